#!/usr/bin/env python3
"""OpenAI's Responses API through the gateway (e2e/tests/ai_responses.rs), with the official
OpenAI SDK: plain, streamed (raw events and the SDK's `responses.stream` helper), a list of
messages cut at max_output_tokens, an upstream 429 with Retry-After, and the 404 that Anthropic and Gemini backends answer.

Envoy is not in front here: the script sets the identity headers Envoy would set. Routes (env):
ROUTE_OPENAI (an OpenAI-compatible backend: the mock's Responses API), ROUTE_ANTHROPIC,
ROUTE_GEMINI, ROUTE_MIXED (a failover group: an Anthropic provider first, then an
OpenAI-compatible one). The client's key is a dummy; the gateway injects the backend's. Output: one JSON
object on stdout; a failed expectation raises.
"""

import json
import os

import openai

GATEWAY = os.environ["GATEWAY_URL"].rstrip("/")
TENANT = os.environ["TENANT"]
out = {}


def client(route):
    return openai.OpenAI(base_url=GATEWAY + "/v1", api_key="sk-client-dummy", max_retries=0,
                         default_headers={"x-fleetgate-tenant": TENANT, "x-fleetgate-route": route})


c = client(os.environ["ROUTE_OPENAI"])
ask = dict(model="gpt-4o-mini", input="hello fleet", instructions="be brief")

r = c.responses.create(**ask)
out["plain"] = {"text": r.output_text, "status": r.status, "model": r.model,
                "usage": [r.usage.input_tokens, r.usage.output_tokens]}

deltas, kinds, final = [], [], None
for ev in c.responses.create(stream=True, **ask):
    kinds.append(ev.type)
    if ev.type == "response.output_text.delta":
        deltas.append(ev.delta)
    elif ev.type == "response.completed":
        final = ev.response
out["stream"] = {"text": "".join(deltas), "first": kinds[0], "last": kinds[-1],
                 "final_text": final.output_text, "usage": [final.usage.input_tokens, final.usage.output_tokens]}

with c.responses.stream(**ask) as s:
    helper_text = "".join(ev.delta for ev in s if ev.type == "response.output_text.delta")
    helper = s.get_final_response()
out["stream_helper"] = {"text": helper_text, "final_text": helper.output_text,
                        "usage": [helper.usage.input_tokens, helper.usage.output_tokens]}

cut = c.responses.create(model="gpt-4o-mini", max_output_tokens=2, input=[
    {"role": "developer", "content": "be brief"},
    {"role": "user", "content": [{"type": "input_text", "text": "hello fleet"}]},
])
out["cut"] = {"text": cut.output_text, "status": cut.status, "reason": cut.incomplete_details.reason,
              "usage": [cut.usage.input_tokens, cut.usage.output_tokens]}

# The mock answers this one 429 with Retry-After (queued by the Rust test): the SDK's own error.
try:
    c.responses.create(stream=True, **ask)
    raise AssertionError("the queued 429 did not arrive")
except openai.RateLimitError as e:
    out["rate_limited"] = {"status": e.status_code, "retry_after": e.response.headers.get("retry-after"),
                           "type": e.type}

for name in ("anthropic", "gemini"):
    try:
        client(os.environ["ROUTE_" + name.upper()]).responses.create(**ask)
        raise AssertionError(f"the Responses API was served for the {name} backend")
    except openai.NotFoundError as e:
        out[name] = {"status": e.status_code, "code": e.code, "message": e.message}

mixed = client(os.environ["ROUTE_MIXED"]).responses.create(**ask)
out["mixed"] = {"text": mixed.output_text, "model": mixed.model}

print(json.dumps(out))
