#!/usr/bin/env python3
"""AI usage as the client sees it (e2e/tests/ai_usage.rs): the official OpenAI Python SDK at the
Gateway's address sends PLAIN chat completions and STREAMS streamed ones, then one that llama.cpp
refuses (`messages` that is not a list: llama-cpp-python's request validation fails, which its
server answers 500; an upstream error the gateway passes on), then
one more request that the tenant's spent request budget must refuse (429).

What the SDK received is printed for the test to compare with the AI gateway's metrics: each
plain answer's `usage`, and for each stream the number of token chunks (a delta with content
and no role: llama.cpp sends one per token and no usage in streams, so the gateway counts
those chunks as the completion tokens).

Input (environment): GATEWAY_URL (http://<gateway address>:8080), PLAIN, STREAMS. Output: one
JSON object on stdout; a failed expectation raises (non-zero exit, traceback on stderr).
"""

import json
import os

import openai

GATEWAY = os.environ["GATEWAY_URL"].rstrip("/") + "/v1"
PLAIN = int(os.environ["PLAIN"])
STREAMS = int(os.environ["STREAMS"])

client = openai.OpenAI(base_url=GATEWAY, api_key="sk-client", max_retries=0)


def chat(i):
    return dict(
        model="anything",  # the backend's openai.model overrides it
        messages=[{"role": "user", "content": "count request %d " % i + "word " * i}],
        max_tokens=6 + i,
        temperature=0,
        seed=7,
    )


out = {"plain": [], "streams": []}
for i in range(PLAIN):
    r = client.chat.completions.create(**chat(i))
    out["plain"].append(
        {
            "model": r.model,
            "prompt_tokens": r.usage.prompt_tokens,
            "completion_tokens": r.usage.completion_tokens,
        }
    )

for i in range(STREAMS):
    token_chunks = 0
    usage = None
    for chunk in client.chat.completions.create(
        stream=True, stream_options={"include_usage": True}, **chat(i)
    ):
        if chunk.usage is not None:
            usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
            }
        for c in chunk.choices:
            if c.delta.content is not None and c.delta.role is None:
                token_chunks += 1
    out["streams"].append({"token_chunks": token_chunks, "usage": usage})

try:
    client.chat.completions.create(extra_body={"messages": "not a list of messages"}, **chat(0))
    raise AssertionError("llama.cpp accepted messages that are not a list")
except openai.APIStatusError as e:
    out["upstream_error_status"] = e.status_code

try:
    client.chat.completions.create(**chat(0))
    raise AssertionError("the spent request budget let a request through")
except openai.RateLimitError as e:
    out["refused_status"] = e.status_code
    out["refused_code"] = e.code

print(json.dumps(out))
