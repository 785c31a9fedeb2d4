#!/usr/bin/env python3
"""Clients of one API through the gateway to a backend of another (e2e/tests/ai_translation.rs).

Envoy is not in front here: the script sets the identity headers Envoy would set. Routes (env):
ROUTE_ANTHROPIC (an Anthropic backend: the mock's Messages API), ROUTE_OPENAI (an OpenAI-compatible
backend: the mock's chat completions). The client's keys are dummies; the gateway injects the
backend's. Output: one JSON object on stdout; a failed expectation raises.
"""

import json
import os

import anthropic
import openai

GATEWAY = os.environ["GATEWAY_URL"].rstrip("/")
TENANT = os.environ["TENANT"]
DUMMY = "sk-client-dummy"
out = {}


def headers(route):
    return {"x-fleetgate-tenant": TENANT, "x-fleetgate-route": route}


# 1. The OpenAI SDK to an Anthropic backend.
oa = openai.OpenAI(base_url=GATEWAY + "/v1", api_key=DUMMY, max_retries=0,
                   default_headers=headers(os.environ["ROUTE_ANTHROPIC"]))
chat = dict(model="gpt-4o", messages=[{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "hello fleet"}], max_tokens=32)
r = oa.chat.completions.create(**chat)
out["openai_to_anthropic"] = {"content": r.choices[0].message.content, "finish_reason": r.choices[0].finish_reason,
                              "usage": [r.usage.prompt_tokens, r.usage.completion_tokens], "model": r.model}
text, usage, chunks = [], None, 0
for ch in oa.chat.completions.create(stream=True, stream_options={"include_usage": True}, **chat):
    chunks += 1
    for c in ch.choices:
        if c.delta.content:
            text.append(c.delta.content)
    if ch.usage:
        usage = [ch.usage.prompt_tokens, ch.usage.completion_tokens]
out["openai_to_anthropic_stream"] = {"content": "".join(text), "usage": usage, "chunks": chunks}
tool = oa.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "hello get_weather"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
call = tool.choices[0].message.tool_calls[0]
out["openai_to_anthropic_tool"] = {"name": call.function.name, "arguments": json.loads(call.function.arguments),
                                   "finish_reason": tool.choices[0].finish_reason}
try:
    oa.chat.completions.create(**chat)
    raise AssertionError("the queued 429 did not arrive")
except openai.RateLimitError as e:
    out["openai_to_anthropic_429"] = {"status": e.status_code, "retry_after": e.response.headers.get("retry-after"),
                                      "type": e.body.get("type") if isinstance(e.body, dict) else None}

# 2. The Anthropic SDK to an OpenAI-compatible backend.
an = anthropic.Anthropic(base_url=GATEWAY, api_key=DUMMY, max_retries=0,
                         default_headers=headers(os.environ["ROUTE_OPENAI"]))
msg = dict(model="claude-x", max_tokens=32, system="be brief", messages=[{"role": "user", "content": "hello fleet"}])
m = an.messages.create(**msg)
out["anthropic_to_openai"] = {"content": m.content[0].text, "stop_reason": m.stop_reason,
                              "usage": [m.usage.input_tokens, m.usage.output_tokens]}
with an.messages.stream(**msg) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()
out["anthropic_to_openai_stream"] = {"content": streamed, "stop_reason": final.stop_reason,
                                     "usage": [final.usage.input_tokens, final.usage.output_tokens]}

# 3. The Anthropic SDK to an Anthropic backend (no translation).
native = anthropic.Anthropic(base_url=GATEWAY, api_key=DUMMY, max_retries=0,
                             default_headers=headers(os.environ["ROUTE_ANTHROPIC"]))
m = native.messages.create(**msg)
out["anthropic_native"] = {"content": m.content[0].text, "usage": [m.usage.input_tokens, m.usage.output_tokens]}
with native.messages.stream(**msg) as s:
    out["anthropic_native_stream"] = {"content": "".join(s.text_stream)}
# 4. The OpenAI SDK to a Gemini backend.
og = openai.OpenAI(base_url=GATEWAY + "/v1", api_key=DUMMY, max_retries=0,
                   default_headers=headers(os.environ["ROUTE_GEMINI"]))
r = og.chat.completions.create(**chat)
out["openai_to_gemini"] = {"content": r.choices[0].message.content, "finish_reason": r.choices[0].finish_reason,
                           "usage": [r.usage.prompt_tokens, r.usage.completion_tokens], "model": r.model}
text, usage = [], None
for ch in og.chat.completions.create(stream=True, stream_options={"include_usage": True}, **chat):
    for c in ch.choices:
        if c.delta.content:
            text.append(c.delta.content)
    if ch.usage:
        usage = [ch.usage.prompt_tokens, ch.usage.completion_tokens]
out["openai_to_gemini_stream"] = {"content": "".join(text), "usage": usage}
tool = og.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "hello get_weather"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
call = tool.choices[0].message.tool_calls[0]
out["openai_to_gemini_tool"] = {"name": call.function.name, "arguments": json.loads(call.function.arguments),
                                "finish_reason": tool.choices[0].finish_reason}
print(json.dumps(out))
