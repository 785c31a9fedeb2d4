"""An A2A client through the gateway, with the official SDK (PyPI a2a-sdk 1.3) and raw JSON-RPC.

GATEWAY_URL is where the tenant's route serves the agent (e.g. http://127.0.7.1:8080/agents/echo).
Steps, each one's findings in the JSON printed on stdout:
- card: the raw agent card at <url>/.well-known/agent-card.json and the older agent.json: every
  interface URL, and whether any string in either names one of HIDDEN (comma-separated: the
  agent's real addresses, which must never reach a client);
- sdk_send: the SDK resolves the card (from the gateway) and sends a message without streaming:
  the task, its state and artifact text;
- sdk_stream: the SDK streams a message: the kinds of the events as they arrived and the text;
- sdk_get: the SDK gets the streamed task back by id;
- v03: A2A v0.3 JSON-RPC by hand: message/send, message/stream (SSE read event by event) and
  tasks/get.
The identity headers it sends (TENANT, ROUTE) are a forgery: Envoy overwrites them.
"""

import asyncio
import json
import os
import sys
import uuid

import httpx

from a2a.client import ClientConfig, create_client
from a2a.helpers import get_artifact_text, new_text_message
from a2a.types import GetTaskRequest, Role, SendMessageRequest

URL = os.environ["GATEWAY_URL"].rstrip("/")
HIDDEN = [h for h in os.environ.get("HIDDEN", "").split(",") if h]
FORGED = {
    "x-fleetgate-tenant": os.environ.get("TENANT", "forged-tenant"),
    "x-fleetgate-route": os.environ.get("ROUTE", "forged/route"),
}
STEPS = os.environ.get("STEPS", "card,sdk_send,sdk_stream,sdk_get,v03").split(",")


def leaks(text: str) -> list[str]:
    return [h for h in HIDDEN if h in text]


def urls_of(card: dict) -> list[str]:
    urls = [card.get("url")] if "url" in card else []
    for key in ("supportedInterfaces", "additionalInterfaces"):
        urls += [i.get("url") for i in card.get(key, [])]
    return urls


async def card_step(http: httpx.AsyncClient) -> dict:
    out = {}
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        r = await http.get(URL + path)
        out[path] = {
            "status": r.status_code,
            "urls": urls_of(r.json()) if r.status_code == 200 else [],
            "leaks": leaks(r.text),
            "skills": [s.get("id") for s in r.json().get("skills", [])] if r.status_code == 200 else [],
        }
    return out


def task_text(task) -> str:
    return "".join(get_artifact_text(a, "") for a in task.artifacts)


async def sdk_steps(http: httpx.AsyncClient, out: dict) -> None:
    sent_task = None
    if "sdk_send" in STEPS:
        client = await create_client(URL, ClientConfig(streaming=False, httpx_client=http))
        msg = new_text_message("hello fleet", role=Role.ROLE_USER)
        events = [e async for e in client.send_message(SendMessageRequest(message=msg))]
        task = events[-1].task
        out["sdk_send"] = {
            "events": len(events),
            "task": bool(task.id),
            "state": task.status.state,
            "text": task_text(task),
        }
    if "sdk_stream" in STEPS:
        client = await create_client(URL, ClientConfig(streaming=True, httpx_client=http))
        msg = new_text_message("streamed hello", role=Role.ROLE_USER)
        kinds, text, task_id = [], "", None
        async for e in client.send_message(SendMessageRequest(message=msg)):
            kind = e.WhichOneof("payload") if hasattr(e, "WhichOneof") else None
            kind = kind or next(
                k for k in ("task", "message", "status_update", "artifact_update") if e.HasField(k)
            )
            kinds.append(kind)
            if kind == "task":
                task_id = e.task.id
            if kind == "artifact_update":
                task_id = e.artifact_update.task_id
                text += get_artifact_text(e.artifact_update.artifact, "")
            if kind == "status_update":
                task_id = e.status_update.task_id
        out["sdk_stream"] = {"kinds": kinds, "text": text}
        sent_task = task_id
    if "sdk_get" in STEPS and sent_task:
        client = await create_client(URL, ClientConfig(streaming=False, httpx_client=http))
        task = await client.get_task(GetTaskRequest(id=sent_task))
        out["sdk_get"] = {"same_task": task.id == sent_task, "state": task.status.state, "text": task_text(task)}


def v03_message(text: str) -> dict:
    return {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": str(uuid.uuid4()),
        "kind": "message",
    }


async def v03_step(http: httpx.AsyncClient) -> dict:
    out = {}
    call = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": v03_message("v03 hello")}}
    r = await http.post(URL, json=call)
    result = r.json().get("result", {})
    out["send"] = {
        "status": r.status_code,
        "kind": result.get("kind"),
        "state": result.get("status", {}).get("state"),
        "text": "".join(p.get("text", "") for a in result.get("artifacts", []) for p in a.get("parts", [])),
    }
    task_id = result.get("id")
    call = {"jsonrpc": "2.0", "id": 2, "method": "message/stream", "params": {"message": v03_message("v03 stream")}}
    kinds = []
    async with http.stream("POST", URL, json=call, headers={"accept": "text/event-stream"}) as s:
        out["stream_content_type"] = s.headers.get("content-type", "")
        async for line in s.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                kinds.append(event.get("result", {}).get("kind") or "error")
    out["stream_kinds"] = kinds
    call = {"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": task_id}}
    r = await http.post(URL, json=call)
    result = r.json().get("result", {})
    out["get"] = {"same_task": result.get("id") == task_id, "state": result.get("status", {}).get("state")}
    return out


async def main() -> None:
    out = {}
    # One client for the SDK, another for the raw calls: the SDK's transports may set headers
    # of their own (the protocol version) on the client they are given.
    async with httpx.AsyncClient(headers=FORGED, timeout=30) as http:
        if "card" in STEPS:
            out["card"] = await card_step(http)
        if "v03" in STEPS:
            out["v03"] = await v03_step(http)
    async with httpx.AsyncClient(headers=FORGED, timeout=30) as http:
        await sdk_steps(http, out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
