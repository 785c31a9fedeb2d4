"""An A2A agent built with the official SDK (PyPI a2a-sdk 1.3): one skill, `echo`, streaming.

Every message starts a task: submitted, working (with a progress status update), an artifact
`echo: <text>` in two chunks, then completed. The agent card it serves names the address it
listens on (as a tenant's pod would) and, with HOSTILE_CARD_URL set, that URL instead for
every interface (the "card pointing elsewhere" attack). It answers JSON-RPC at RPC_PATH for
A2A v1.0 and v0.3 clients alike, and it refuses every call without `Authorization: Bearer
AGENT_KEY` when AGENT_KEY is set (the key only the gateway holds). It prints `ready` once
listening.

Environment: HOST, PORT (where to listen), RPC_PATH (default /), AGENT_KEY, HOSTILE_CARD_URL.
"""

import asyncio
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from a2a.helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    TaskState,
)

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ["PORT"])
RPC_PATH = os.environ.get("RPC_PATH", "/")
AGENT_KEY = os.environ.get("AGENT_KEY", "")
CARD_URL = os.environ.get("HOSTILE_CARD_URL") or f"http://{HOST}:{PORT}{RPC_PATH}"


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        text = context.get_user_input()
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            new_text_message("echoing", context_id=task.context_id, task_id=task.id),
        )
        await asyncio.sleep(0.05)
        await updater.add_artifact([new_text_part("echo: ")], name="echo", artifact_id="echo")
        await asyncio.sleep(0.05)
        await updater.add_artifact(
            [new_text_part(text)], name="echo", artifact_id="echo", append=True, last_chunk=True
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


def card() -> AgentCard:
    return AgentCard(
        name="echo agent",
        description=f"says back what it hears; reach it at {CARD_URL}",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=CARD_URL, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=CARD_URL, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True),
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description="Answers with the text it was sent",
                tags=["echo", "test"],
                examples=["hello", f"see {CARD_URL}docs"],
            )
        ],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        documentation_url=f"{CARD_URL}docs",
    )


def app():
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card()
    )
    routes = create_agent_card_routes(card()) + create_jsonrpc_routes(
        handler, RPC_PATH, enable_v0_3_compat=True
    )
    return RequireKey(Starlette(routes=routes))


class RequireKey:
    """ASGI: POSTs without `Authorization: Bearer AGENT_KEY` get 401 (when AGENT_KEY is set)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if AGENT_KEY and scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope["headers"])
            if headers.get(b"authorization", b"").decode() != f"Bearer {AGENT_KEY}":
                refusal = JSONResponse(
                    {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "no or wrong key"}},
                    status_code=401,
                )
                await refusal(scope, receive, send)
                return
        await self.inner(scope, receive, send)


async def main() -> None:
    config = uvicorn.Config(app(), host=HOST, port=PORT, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
