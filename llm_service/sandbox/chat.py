"""Fake OpenAI-compatible chat completions (what OpenRouter and OpenAI both speak).

No model is involved: the answer is a pure function of the request, so the same request always gets the same
response, id and usage included. Emergency-contacts prompts get the markdown the bundled workflow parses; any
other prompt gets a short summary that echoes the start of the last user message, enough for other workflows to
run end to end. A request with ``response_format`` gets JSON: one that fits its ``json_schema`` (see
:mod:`.structured`), or a small object for ``json_object``.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..engine.pricing import estimate_tokens
from . import data, emergency
from .structured import instance_of
from .messages import Reply, Request

DEFAULT_MODEL = "sandbox/echo"
# A tiny fixed price so cost plumbing has non-zero numbers to carry (USD per million tokens).
INPUT_USD_PER_MTOK = 0.50
OUTPUT_USD_PER_MTOK = 1.50
ECHO_CHARS = 200


def _error(status: int, message: str, kind: str, code: str | None = None) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": kind, "param": None, "code": code},
                               "sandbox": True})


def cost_usd(prompt_tokens: int, completion_tokens: int) -> float:
    return round((prompt_tokens * INPUT_USD_PER_MTOK + completion_tokens * OUTPUT_USD_PER_MTOK) / 1_000_000, 10)


def completions(request: Request) -> Reply:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "Missing bearer API key (the sandbox accepts any non-empty key).",
                      "invalid_request_error", "invalid_api_key")
    body = request.json()
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.", "invalid_request_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "'messages' must be a non-empty list of message objects.", "invalid_request_error")
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        return _error(400, "'model' must be a string.", "invalid_request_error")
    completion = build_completion(body, messages, model)
    if body.get("stream"):
        return Reply(200, stream_completion(completion, body).encode("utf-8"), "text/event-stream")
    return Reply.json(200, completion)


def stream_completion(completion: dict, body: dict) -> str:
    """The same answer as server-sent events, the way OpenAI streams it: a chunk per word (with its trailing
    space), a last chunk with the finish reason, usage in a chunk of its own when ``stream_options.include_usage``
    asks for it, then ``[DONE]``. Pace it with the ``slow_drip`` fault to see it arrive."""
    choice = completion["choices"][0]
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        payload = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    pieces = re.findall(r"\S+\s*|\s+", choice["message"]["content"])
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, choice["finish_reason"]))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        usage = {**head, "choices": [], "usage": completion["usage"]}
        events.append(f"data: {json.dumps(usage, ensure_ascii=False)}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


def build_completion(body: dict, messages: list[dict], model: str) -> dict:
    texts = [message_text(m.get("content")) for m in messages]
    prompt = "\n\n".join(texts)
    last_user = next((t for m, t in zip(reversed(messages), reversed(texts)) if m.get("role") == "user"), texts[-1])
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")
    schema = (response_format.get("json_schema") or {}).get("schema") if json_mode and isinstance(
        response_format.get("json_schema"), dict) else None
    content = answer(prompt, last_user, model, json_mode=json_mode, schema=schema)
    finish_reason = "stop"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < estimate_tokens(content):
        content, finish_reason = content[: max_tokens * 4], "length"
    prompt_tokens, completion_tokens = estimate_tokens(prompt), estimate_tokens(content)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return {
        "id": f"chatcmpl-sbx-{digest[:24]}",
        "object": "chat.completion",
        "created": data.SANDBOX_EPOCH,
        "model": model,
        "provider": "sandbox",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens,
                  "cost": cost_usd(prompt_tokens, completion_tokens)},
        "sandbox": True,
    }


def answer(prompt: str, last_user: str, model: str, *, json_mode: bool = False, schema: Any = None) -> str:
    if not json_mode and emergency.is_emergency_request(prompt):
        return emergency.build_markdown(prompt)
    echo = re.sub(r"\s+", " ", last_user).strip()[:ECHO_CHARS]
    if isinstance(schema, dict):
        return json.dumps(instance_of(schema), ensure_ascii=False)
    if json_mode:
        return json.dumps({"sandbox": True, "summary": echo, "model": model})
    return (
        "## Summary\n\n"
        f"Sandbox answer: no language model was called. The request began: \"{echo}\"\n\n"
        f"This deterministic reply was produced by the llm-service sandbox for model `{model}` so that workflows "
        "can run end to end without API keys. Point the service at a real provider for real output.\n"
    )


def message_text(content: Any) -> str:
    """Message content as text: a plain string, or the text parts of a multi-part content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return "" if content is None else str(content)


def models(request: Request) -> Reply:
    return Reply.json(200, {"object": "list", "data": [
        {"id": DEFAULT_MODEL, "object": "model", "created": data.SANDBOX_EPOCH, "owned_by": "sandbox"}],
        "sandbox": True})
