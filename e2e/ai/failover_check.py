#!/usr/bin/env python3
"""Sends chat completions through the gateway with the OpenAI SDK, step by step
(e2e/tests/ai_failover.rs). STEPS is a comma-separated list of `plain`, `stream`, `responses`
and `responses_stream` (OpenAI's Responses API, plain and streamed) and `sleepN` (seconds); the
output is the list of answers' contents (and, for errors, the status), in order.
"""

import json
import os
import time

import openai

client = openai.OpenAI(
    base_url=os.environ["GATEWAY_URL"].rstrip("/") + "/v1",
    api_key="sk-client-dummy",
    max_retries=0,
    default_headers={"x-fleetgate-tenant": os.environ["TENANT"], "x-fleetgate-route": os.environ["ROUTE"]},
)
chat = dict(model="gpt-4o", messages=[{"role": "user", "content": "hello fleet"}], max_tokens=32)
out = []
for step in os.environ["STEPS"].split(","):
    if step.startswith("sleep"):
        time.sleep(float(step[5:]))
        continue
    try:
        if step == "plain":
            out.append(client.chat.completions.create(**chat).choices[0].message.content)
        elif step == "responses":
            out.append(client.responses.create(model="gpt-4o", input="hello fleet").output_text)
        elif step == "responses_stream":
            deltas = [ev.delta for ev in client.responses.create(model="gpt-4o", input="hello fleet", stream=True)
                      if ev.type == "response.output_text.delta"]
            out.append("".join(deltas))
        elif step == "stream":
            text = []
            for ch in client.chat.completions.create(stream=True, **chat):
                for c in ch.choices:
                    if c.delta.content:
                        text.append(c.delta.content)
            out.append("".join(text))
        else:
            raise AssertionError(f"unknown step {step!r}")
    except openai.APIStatusError as e:
        out.append(f"status {e.status_code}")
print(json.dumps(out))
