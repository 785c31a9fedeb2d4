"""The official PyPI `mcp` SDK as the client of a federated MCP endpoint (fleetgate's AI gateway).

Connects over streamable HTTP (`--url`) or the older HTTP+SSE transport (`--sse-url`), lists the
merged catalog (tools, prompts, resources, resource templates), calls a tool on each target named
by `--call TOOL` (JSON arguments after `=`; a JSON-RPC error answering it is reported as
`rpc_error`), reads `--read URI`, gets `--prompt NAME`, and prints
one JSON line with what it saw. `--header k=v` adds a header to every request (identity headers
when the gateway is reached without Envoy, `Authorization=Bearer <JWT>`).

`--relist`: the tools are listed again at the end of the session (`tools_after`).

Usage: client_check.py (--url URL | --sse-url URL) [--header k=v]... [--call NAME[=JSON]]...
       [--read URI]... [--prompt NAME]...
"""

import argparse
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def text_of(items) -> list[str]:
    out = []
    for c in items:
        t = getattr(c, "text", None)
        if t is None and getattr(c, "content", None) is not None:
            t = getattr(c.content, "text", None)
        if t is None and getattr(c, "resource", None) is not None:
            t = getattr(c.resource, "text", None)
        out.append(t)
    return out


async def run(args) -> dict:
    headers = dict(h.split("=", 1) for h in args.header)
    if args.url:
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        transport = streamable_http_client(args.url, http_client=http)
    else:
        transport = sse_client(args.sse_url, headers=headers, timeout=30)
    report: dict = {}
    async with Client(transport, mode="auto", cache=None) as client:
        report["protocol_version"] = client.protocol_version
        report["server"] = client.server_info.name if client.server_info else None
        report["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        report["prompts"] = sorted(p.name for p in (await client.list_prompts()).prompts)
        report["resources"] = sorted(str(r.uri) for r in (await client.list_resources()).resources)
        report["templates"] = sorted(
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        )
        calls = {}
        for spec in args.call:
            name, _, raw = spec.partition("=")
            arguments = json.loads(raw) if raw else {}
            try:
                r = await client.call_tool(name, arguments)
            except MCPError as e:
                # A JSON-RPC error answering the call (e.g. refused by the gateway's rules).
                calls[name] = {"rpc_error": {"code": e.code, "message": e.message}}
                continue
            calls[name] = {"error": bool(r.is_error), "text": text_of(r.content)}
        report["calls"] = calls
        reads = {}
        for uri in args.read:
            r = await client.read_resource(uri)
            reads[uri] = {"uris": [str(c.uri) for c in r.contents], "text": text_of(r.contents)}
        report["reads"] = reads
        prompts = {}
        for name in args.prompt:
            r = await client.get_prompt(name, {"who": "tester"})
            prompts[name] = text_of(r.messages)
        report["got_prompts"] = prompts
        if args.relist:
            report["tools_after"] = sorted(t.name for t in (await client.list_tools()).tools)
    return report


def main() -> int:
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--url")
    g.add_argument("--sse-url")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--call", action="append", default=[])
    # List the tools again at the end of the session (after the calls): "tools_after".
    p.add_argument("--relist", action="store_true")
    p.add_argument("--read", action="append", default=[])
    p.add_argument("--prompt", action="append", default=[])
    args = p.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
