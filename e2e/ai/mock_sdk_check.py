#!/usr/bin/env python3
"""Proves the mock cloud APIs (e2e/src/mock_llm) with each vendor's official SDK, talking to the
mock directly (e2e/tests/mock_providers.rs). What the SDKs accept here is what the gateway's
tests may rely on.

Input (environment): MOCK_URL (http://ip:port), MOCK_KEY, and VENDOR (openai, anthropic or
gemini). The Rust test queues one 429 fault (Retry-After: 7) before running the script; the
script's first request hits it. Output: one JSON object on stdout; a failed expectation raises.
"""

import json
import os

URL = os.environ["MOCK_URL"].rstrip("/")
KEY = os.environ["MOCK_KEY"]
VENDOR = os.environ["VENDOR"]
PROMPT = "hello fleet get_weather"
out = {}


def openai_check():
    import openai

    c = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)
    chat = dict(model="mock-gpt", messages=[{"role": "user", "content": "hello fleet"}])
    try:
        c.chat.completions.create(**chat)
        raise AssertionError("the queued 429 did not arrive")
    except openai.RateLimitError as e:
        out["rate_limited"] = {"status": e.status_code, "retry_after": e.response.headers.get("retry-after")}
    r = c.chat.completions.create(**chat)
    out["plain"] = {
        "content": r.choices[0].message.content,
        "finish_reason": r.choices[0].finish_reason,
        "usage": [r.usage.prompt_tokens, r.usage.completion_tokens],
    }
    text, usage = [], None
    for ch in c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **chat):
        for choice in ch.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
        if ch.usage:
            usage = [ch.usage.prompt_tokens, ch.usage.completion_tokens]
    out["stream"] = {"content": "".join(text), "usage": usage}
    cut = c.chat.completions.create(max_tokens=2, **chat)
    out["cut"] = {"content": cut.choices[0].message.content, "finish_reason": cut.choices[0].finish_reason}
    tool = c.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": PROMPT}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    call = tool.choices[0].message.tool_calls[0]
    out["tool"] = {"name": call.function.name, "arguments": json.loads(call.function.arguments),
                   "finish_reason": tool.choices[0].finish_reason}
    emb = c.embeddings.create(model="mock-embed", input=["a b", "c"])
    out["embeddings"] = {"vectors": len(emb.data), "dims": len(emb.data[0].embedding), "tokens": emb.usage.prompt_tokens}
    out["models"] = [m.id for m in c.models.list()]
    responses_check(c)
    bad = openai.OpenAI(base_url=URL + "/v1", api_key="wrong", max_retries=0)
    try:
        bad.chat.completions.create(**chat)
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as e:
        out["wrong_key"] = {"status": e.status_code, "code": e.code}


def responses_check(c):
    """OpenAI's Responses API: plain (string input with instructions), a list of messages cut at
    max_output_tokens, streamed events ending in response.completed with usage, a bad request."""
    import openai
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    # The SDK builds its models without validating; validate the raw body and every raw event
    # strictly against its types, so a missing or mistyped field fails here.
    raw = c.responses.with_raw_response.create(model="mock-gpt", input="hello fleet", instructions="be brief")
    Response.model_validate(raw.http_response.json())
    events = TypeAdapter(ResponseStreamEvent)
    validated = 0
    with c.responses.with_streaming_response.create(model="mock-gpt", input="hello fleet", stream=True) as s:
        for line in s.iter_lines():
            if line.startswith("data: "):
                events.validate_json(line[len("data: "):])
                validated += 1
    out["responses_validated_events"] = validated

    r = c.responses.create(model="mock-gpt", input="hello fleet", instructions="be brief")
    out["responses_plain"] = {
        "text": r.output_text, "status": r.status, "object": r.object, "id": r.id,
        "usage": [r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens],
        "types": [type(r).__name__, type(r.output[0]).__name__, type(r.output[0].content[0]).__name__],
    }
    cut = c.responses.create(model="mock-gpt", max_output_tokens=2, input=[
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "input_text", "text": "hello fleet"}]},
    ])
    out["responses_cut"] = {"text": cut.output_text, "status": cut.status,
                            "reason": cut.incomplete_details.reason, "usage": [cut.usage.input_tokens, cut.usage.output_tokens]}
    deltas, kinds, classes, done_text, final = [], [], set(), None, None
    for ev in c.responses.create(model="mock-gpt", input="hello fleet", instructions="be brief", stream=True):
        kinds.append(ev.type)
        classes.add(type(ev).__name__)
        if ev.type == "response.output_text.delta":
            deltas.append(ev.delta)
        elif ev.type == "response.output_text.done":
            done_text = ev.text
        elif ev.type == "response.completed":
            final = ev.response
    out["responses_stream"] = {
        "text": "".join(deltas), "done_text": done_text, "first": kinds[0], "last": kinds[-1],
        "deltas": len(deltas), "final_text": final.output_text, "status": final.status,
        "usage": [final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens],
        "classes": sorted(classes),
    }
    # The SDK's own stream helper assembles the same final response from the events.
    with c.responses.stream(model="mock-gpt", input="hello fleet", instructions="be brief") as s:
        for _ in s:
            pass
        helper = s.get_final_response()
    out["responses_stream_helper"] = {"text": helper.output_text, "usage": [helper.usage.input_tokens, helper.usage.output_tokens]}
    try:
        c.responses.create(model="mock-gpt", input=[])
        raise AssertionError("an empty input was accepted")
    except openai.BadRequestError as e:
        out["responses_bad"] = {"status": e.status_code, "type": e.type}


def anthropic_check():
    import anthropic

    c = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)
    msg = dict(model="mock-claude", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hello fleet"}])
    try:
        c.messages.create(**msg)
        raise AssertionError("the queued 429 did not arrive")
    except anthropic.RateLimitError as e:
        out["rate_limited"] = {"status": e.status_code, "retry_after": e.response.headers.get("retry-after"),
                               "type": e.body["error"]["type"]}
    r = c.messages.create(**msg)
    out["plain"] = {"content": r.content[0].text, "stop_reason": r.stop_reason,
                    "usage": [r.usage.input_tokens, r.usage.output_tokens]}
    with c.messages.stream(**msg) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    out["stream"] = {"content": text, "stop_reason": final.stop_reason,
                     "usage": [final.usage.input_tokens, final.usage.output_tokens]}
    cut = c.messages.create(**{**msg, "max_tokens": 2})
    out["cut"] = {"content": cut.content[0].text, "stop_reason": cut.stop_reason}
    tool = c.messages.create(model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": PROMPT}],
                             tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    block = tool.content[0]
    out["tool"] = {"name": block.name, "arguments": block.input, "stop_reason": tool.stop_reason}
    bad = anthropic.Anthropic(base_url=URL, api_key="wrong", max_retries=0)
    try:
        bad.messages.create(**msg)
        raise AssertionError("a wrong key was accepted")
    except anthropic.AuthenticationError as e:
        out["wrong_key"] = {"status": e.status_code, "type": e.body["error"]["type"]}


def gemini_check():
    from google import genai
    from google.genai import errors, types

    def client(key):
        return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=URL, api_version="v1beta"))

    c = client(KEY)
    try:
        c.models.generate_content(model="mock-gemini", contents="hello fleet")
        raise AssertionError("the queued 429 did not arrive")
    except errors.ClientError as e:
        out["rate_limited"] = {"status": e.code, "retry_after": None, "status_text": e.status}
    cfg = types.GenerateContentConfig(system_instruction="be brief")
    r = c.models.generate_content(model="mock-gemini", contents="hello fleet", config=cfg)
    out["plain"] = {"content": r.text, "finish_reason": str(r.candidates[0].finish_reason),
                    "usage": [r.usage_metadata.prompt_token_count, r.usage_metadata.candidates_token_count]}
    text, usage = [], None
    for ch in c.models.generate_content_stream(model="mock-gemini", contents="hello fleet", config=cfg):
        if ch.text:
            text.append(ch.text)
        if ch.usage_metadata and ch.usage_metadata.candidates_token_count:
            usage = [ch.usage_metadata.prompt_token_count, ch.usage_metadata.candidates_token_count]
    out["stream"] = {"content": "".join(text), "usage": usage}
    cut = c.models.generate_content(model="mock-gemini", contents="hello fleet",
                                    config=types.GenerateContentConfig(max_output_tokens=2))
    out["cut"] = {"content": cut.text, "finish_reason": str(cut.candidates[0].finish_reason)}
    decl = types.FunctionDeclaration(name="get_weather", parameters=types.Schema(type="OBJECT"))
    tool = c.models.generate_content(
        model="mock-gemini", contents=PROMPT,
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])],
                                           automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
    fc = tool.function_calls[0]
    out["tool"] = {"name": fc.name, "arguments": dict(fc.args)}
    bad = client("wrong")  # kept in a variable: a dropped Client closes its connection pool
    try:
        bad.models.generate_content(model="mock-gemini", contents="hello fleet")
        raise AssertionError("a wrong key was accepted")
    except errors.ClientError as e:
        out["wrong_key"] = {"status": e.code, "status_text": e.status}


{"openai": openai_check, "anthropic": anthropic_check, "gemini": gemini_check}[VENDOR]()
print(json.dumps(out))
