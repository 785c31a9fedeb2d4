#!/usr/bin/env python3
"""The KubeLB tutorial's client, through the whole data path (e2e/tests/agent_gateway.rs).

The official OpenAI Python SDK pointed at the Gateway's address, as a tenant's user would be:
no fleetgate headers, and an api_key that is NOT the provider's (llama.cpp refuses it, shown
first by asking llama.cpp directly). Envoy sets the tenant and route headers, the AI gateway
puts the key from the tenant's Secret on the request.

Input (environment): GATEWAY_URL (http://<gateway address>:8080), LLAMA_URL. Optional
FORGED_TENANT: also send a forged x-fleetgate-tenant / x-fleetgate-route pair naming that
tenant, which Envoy must overwrite. Output: one JSON object on stdout; a failed expectation
raises (non-zero exit, traceback on stderr).
"""

import json
import os

import openai

GATEWAY = os.environ["GATEWAY_URL"].rstrip("/") + "/v1"
LLAMA = os.environ["LLAMA_URL"].rstrip("/") + "/v1"
CLIENT_KEY = "sk-the-client-never-holds-the-provider-key"

CHAT = dict(
    model="anything",  # the backend's openai.model overrides it
    messages=[{"role": "user", "content": "hello fleet"}],
    max_tokens=12,
    temperature=0,
    seed=7,
)

out = {}

# The client's key is refused by llama.cpp itself.
direct = openai.OpenAI(base_url=LLAMA, api_key=CLIENT_KEY, max_retries=0)
try:
    direct.chat.completions.create(**CHAT)
    raise AssertionError("llama.cpp accepted the client's key")
except openai.AuthenticationError as e:
    out["direct_status"] = e.status_code

headers = None
if os.environ.get("FORGED_TENANT"):
    headers = {
        "x-fleetgate-tenant": os.environ["FORGED_TENANT"],
        "x-fleetgate-route": "c1/default/forged",
    }
client = openai.OpenAI(base_url=GATEWAY, api_key=CLIENT_KEY, default_headers=headers, max_retries=0)

plain = client.chat.completions.create(**CHAT)
out["plain"] = {
    "model": plain.model,
    "content": plain.choices[0].message.content,
    "finish_reason": plain.choices[0].finish_reason,
    "completion_tokens": plain.usage.completion_tokens,
}

content = []
chunks = 0
finish = None
for chunk in client.chat.completions.create(stream=True, **CHAT):
    chunks += 1
    for c in chunk.choices:
        if c.delta.content:
            content.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
out["stream"] = {"content": "".join(content), "chunks": chunks, "finish_reason": finish}

print(json.dumps(out))
