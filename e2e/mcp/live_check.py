"""The official PyPI `mcp` SDK as a client of the live tools of `server.py --live-tools`, through
a federated endpoint (fleetgate's AI gateway) or straight to a server.

For each `--steps TARGET` it calls `<TARGET>steps(n=3)` with a progress callback and records the
progress and the log messages (`notifications/message`) that arrive meanwhile. For each
`--cancel TARGET` it calls `<TARGET>sleepy(tag)`, cancels the call as soon as its first progress
arrives (the SDK then sends `notifications/cancelled`), and asks `<TARGET>was_cancelled` until
the target names the tag (up to 30 s). With `--grow TARGET` it waits until the session's own
stream works (calls `<TARGET>announce` until a `notifications/prompts/list_changed` arrives, up
to 30 s), calls `<TARGET>grow(tool=NEW)`, waits for `notifications/tools/list_changed` (up to
30 s), lists the tools again and calls the new one. For each `--ask TARGET` it calls
`<TARGET>ask`, whose target asks this client to sample: the client's model answers
`model says: <question>`. TARGET is the name prefix (`alpha_`, or `` straight to a server).
Prints one JSON line with what it saw.

Usage: live_check.py --url URL [--header k=v]... [--steps T]... [--cancel T]... [--ask T]...
       [--grow T --new NAME]
"""

import argparse
import asyncio
import json
import sys
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CreateMessageResult, TextContent


def texts(result) -> list:
    return [getattr(c, "text", None) for c in result.content]


async def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def run(args) -> dict:
    headers = dict(h.split("=", 1) for h in args.header)
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    seen: list[str] = []
    logs: list[str] = []

    async def on_message(message) -> None:
        method = getattr(message, "method", None)
        if method is None and hasattr(message, "root"):
            method = getattr(message.root, "method", None)
        if method:
            seen.append(method)

    async def on_log(params) -> None:
        logs.append(str(params.data))

    sampled: list[str] = []

    async def on_sampling(context, params) -> CreateMessageResult:
        question = params.messages[0].content.text
        sampled.append(question)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=f"model says: {question}"), model="test-model"
        )

    report: dict = {"steps": {}, "cancel": {}, "ask": {}, "grow": None}
    transport = streamable_http_client(args.url, http_client=http)
    async with Client(transport, mode="legacy", cache=None, message_handler=on_message, logging_callback=on_log,
                      sampling_callback=on_sampling) as client:
        for t in args.steps:
            progress: list = []

            async def on_progress(p, total, message, progress=progress) -> None:
                progress.append([p, total, message])

            logs.clear()
            r = await client.call_tool(f"{t}steps", {"n": 3}, progress_callback=on_progress)
            report["steps"][t] = {"progress": progress, "logs": list(logs), "text": texts(r)}

        for t in args.cancel:
            tag = f"cancel-{t}{int(time.time() * 1000)}"
            started = asyncio.Event()

            async def on_start(p, total, message, started=started) -> None:
                started.set()

            call = asyncio.create_task(client.call_tool(f"{t}sleepy", {"tag": tag}, progress_callback=on_start))
            await asyncio.wait_for(started.wait(), 30)
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                pass
            seen_by_target = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and tag not in seen_by_target:
                seen_by_target = texts(await client.call_tool(f"{t}was_cancelled", {}))[0] or ""
                await asyncio.sleep(0.2)
            report["cancel"][t] = {"tag": tag, "target_saw_cancel": tag in seen_by_target.split(",")}

        for t in args.ask:
            question = f"what is {t}?"
            r = await client.call_tool(f"{t}ask", {"question": question})
            report["ask"][t] = {"text": texts(r), "sampled": question in sampled}

        if args.grow is not None:
            t = args.grow
            stream_up = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not stream_up:
                await client.call_tool(f"{t}announce", {})
                stream_up = await wait_for(lambda: "notifications/prompts/list_changed" in seen, 1)
            before = sorted(x.name for x in (await client.list_tools()).tools)
            grown = texts(await client.call_tool(f"{t}grow", {"tool": args.new}))
            changed = await wait_for(lambda: "notifications/tools/list_changed" in seen, 30)
            after = sorted(x.name for x in (await client.list_tools()).tools)
            new_name = f"{t}{args.new}"
            call = texts(await client.call_tool(new_name, {})) if new_name in after else None
            report["grow"] = {
                "stream_up": stream_up,
                "grown": grown,
                "tools_list_changed": changed,
                "new_before": new_name in before,
                "new_after": new_name in after,
                "call": call,
            }
    report["notifications"] = sorted(set(seen))
    return report


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--steps", action="append", default=[])
    p.add_argument("--cancel", action="append", default=[])
    p.add_argument("--ask", action="append", default=[])
    p.add_argument("--grow")
    p.add_argument("--new", default="fresh")
    args = p.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
