#!/usr/bin/env python3
"""Drives fleetgate's AI gateway with the official OpenAI Python SDK (e2e/tests/ai_gateway.rs).

Envoy is not in front of the gateway in this test (that comes with the hub integration), so the
headers Envoy would set, x-fleetgate-tenant and x-fleetgate-route, are set here with the SDK's
default_headers. The client's api_key is a dummy that llama.cpp refuses; the gateway puts the
backend's key on the request instead.

Input (environment): GATEWAY_URL, LLAMA_URL, LLAMA_KEY, TENANT, ROUTE_OK, ROUTE_UNREACHABLE,
ROUTE_WRONG_KEY. Output: one JSON object on stdout with what was seen; any failed expectation
raises (non-zero exit, traceback on stderr).
"""

import json
import os
import urllib.error
import urllib.request

import openai

GATEWAY = os.environ["GATEWAY_URL"].rstrip("/") + "/v1"
LLAMA = os.environ["LLAMA_URL"].rstrip("/") + "/v1"
LLAMA_KEY = os.environ["LLAMA_KEY"]
TENANT = os.environ["TENANT"]
DUMMY_KEY = "sk-dummy-client-key-llama-would-refuse"

CHAT = dict(
    model="gpt-4o-mini",  # the backend's model override replaces it
    messages=[{"role": "user", "content": "hello fleet"}],
    max_tokens=12,
    temperature=0,
    seed=7,
)


def gateway(route, headers=True):
    # Stand-in for Envoy: the identity headers it would set from the matched route.
    default_headers = {"x-fleetgate-tenant": TENANT, "x-fleetgate-route": route} if headers else None
    return openai.OpenAI(
        base_url=GATEWAY, api_key=DUMMY_KEY, default_headers=default_headers, max_retries=0
    )


def expect(exc_type, fn):
    try:
        fn()
    except exc_type as e:
        return e
    raise AssertionError(f"expected {exc_type.__name__}")


out = {}

# 1. The dummy key is refused by llama.cpp itself: the same request, straight to it.
direct_dummy = openai.OpenAI(base_url=LLAMA, api_key=DUMMY_KEY, max_retries=0)
e = expect(openai.AuthenticationError, lambda: direct_dummy.chat.completions.create(**CHAT))
out["direct_dummy_status"] = e.status_code

# 2. Through the gateway with the same dummy key: models, plain and streamed chat.
gw = gateway(os.environ["ROUTE_OK"])
out["models"] = [m.id for m in gw.models.list().data]

plain = gw.chat.completions.create(**CHAT)
out["plain"] = {
    "content": plain.choices[0].message.content,
    "model": plain.model,
    "finish_reason": plain.choices[0].finish_reason,
    "prompt_tokens": plain.usage.prompt_tokens,
    "completion_tokens": plain.usage.completion_tokens,
}

# The same request straight to llama.cpp with the real key: the same answer (temperature 0).
direct = openai.OpenAI(base_url=LLAMA, api_key=LLAMA_KEY, max_retries=0)
out["direct_content"] = direct.chat.completions.create(**dict(CHAT, model="tiny")).choices[0].message.content


def stream(**extra):
    chunks = list(gw.chat.completions.create(stream=True, **CHAT, **extra))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return {
        "content": content,
        "chunks": len(chunks),
        "content_chunks": sum(1 for c in chunks if c.choices and c.choices[0].delta.content),
        # llama.cpp sends one event per token (content "" for a partial UTF-8 sequence).
        "token_chunks": sum(
            1
            for c in chunks
            if c.choices and c.choices[0].delta.content is not None and c.choices[0].delta.role is None
        ),
        "usage_chunks": sum(1 for c in chunks if getattr(c, "usage", None) is not None),
        "empty_choice_chunks": sum(1 for c in chunks if not c.choices),
    }


out["stream"] = stream()
out["stream_with_usage"] = stream(stream_options={"include_usage": True})

emb = gw.embeddings.create(model="text-embedding-3-small", input="hello fleet", encoding_format="float")
out["embeddings"] = {
    "model": emb.model,
    "vectors": len(emb.data),
    "prompt_tokens": emb.usage.prompt_tokens,
}

# 3. Errors, as the SDK's typed exceptions.
e = expect(openai.NotFoundError, lambda: gateway("llm/no-such-route").chat.completions.create(**CHAT))
out["unknown_route"] = {"status": e.status_code, "body": e.body}

e = expect(openai.APIStatusError, lambda: gateway(os.environ["ROUTE_UNREACHABLE"]).chat.completions.create(**CHAT))
out["unreachable"] = {"status": e.status_code, "body": e.body, "class": type(e).__name__}
assert isinstance(e, openai.APIStatusError)

e = expect(openai.AuthenticationError, lambda: gateway(os.environ["ROUTE_WRONG_KEY"]).chat.completions.create(**CHAT))
out["upstream_401"] = {"status": e.status_code, "body": e.body}

e = expect(openai.PermissionDeniedError, lambda: gateway("x", headers=False).chat.completions.create(**CHAT))
out["no_envoy_headers"] = {"status": e.status_code, "body": e.body}

# Bad JSON cannot be sent with the SDK: sent raw with the standard library.
raw = urllib.request.Request(
    GATEWAY + "/chat/completions",
    data=b'{"model": "x", "messages": [',
    method="POST",
    headers={
        "content-type": "application/json",
        "authorization": "Bearer " + DUMMY_KEY,
        "x-fleetgate-tenant": TENANT,
        "x-fleetgate-route": os.environ["ROUTE_OK"],
    },
)
try:
    urllib.request.urlopen(raw)
    raise AssertionError("bad JSON was accepted")
except urllib.error.HTTPError as e:
    out["bad_json"] = {"status": e.code, "body": json.loads(e.read())}

print(json.dumps(out))
