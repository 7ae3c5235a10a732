"""OpenAI-compatible chat completions (OpenRouter, OpenAI, any ``LLM_PROVIDER_<NAME>_*`` endpoint).

Request and error messages follow the old OpenRouter provider, with these fixes: ``top_p`` (and ``temperature``)
are sent only when set instead of as ``null``; parse failures are reported once, not double-prefixed with
"Unexpected error"; a response without ``usage`` is accepted with zero tokens rather than failing a call whose
content arrived; and with ``usage_accounting`` (OpenRouter) the provider is asked for, and we keep, its real cost.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Mapping, Optional

from ..engine.errors import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    WorkflowError,
)
from ..engine.ports import CancelToken, ChatRequest, ChatResponse
from ..http.client import HttpClient, HttpResponse
from ..redaction import scrub_values
from ..sse import SseParser
from .base import (
    clip,
    error_message_of,
    json_object,
    require_credential,
    send,
    upstream_error,
)

log = logging.getLogger(__name__)

OPERATION = "chat_completions"


class OpenAICompatibleProvider:
    def __init__(self, name: str, http: HttpClient, *, base_url: str, api_key: str, api_key_env: str,
                 extra_headers: Optional[Mapping[str, str]] = None, usage_accounting: bool = False,
                 display_name: Optional[str] = None) -> None:
        self.name = name
        self.display_name = display_name or name
        self._http = http
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._api_key = api_key
        self._api_key_env = api_key_env
        self._extra_headers = {k: v for k, v in (extra_headers or {}).items() if v}
        self._usage_accounting = usage_accounting

    def complete(self, request: ChatRequest, *, timeout: float,
                 cancel: Optional[CancelToken] = None) -> ChatResponse:
        headers = self._headers()
        started = time.monotonic()
        try:
            response = send(self._http, "POST", self._url, json=self._body(request), headers=headers,
                            service=self.name, operation=OPERATION, timeout=timeout, cancel=cancel)
        except UpstreamTimeout:
            raise self._error(UpstreamTimeout, f"Request timed out after {float(timeout)}s") from None
        duration_ms = int((time.monotonic() - started) * 1000)
        if not 200 <= response.status < 300:
            raise self._status_error(response)
        data = json_object(response, service=self.name, operation=OPERATION, secrets=(self._api_key,))
        return self._parse(data, request, duration_ms)

    def _headers(self) -> dict[str, str]:
        require_credential(self._api_key, f"{self._api_key_env} is not set: LLM provider '{self.name}' needs it",
                           service=self.name, operation=OPERATION)
        return {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json",
                **self._extra_headers}

    def stream(self, request: ChatRequest, *, timeout: float, cancel: Optional[CancelToken] = None,
               on_delta: Callable[[str], None]) -> ChatResponse:
        """:meth:`complete` with the answer streamed (``stream: true``, usage in the last chunk): ``on_delta``
        gets each piece of text as it arrives, and the response is built from the reassembled answer by the same
        parser, so content, usage and cost equal the non-streamed call's. A failure after the first piece is not
        retryable: a retry would show the watcher the text twice."""
        headers = self._headers()
        body = {**self._body(request), "stream": True, "stream_options": {"include_usage": True}}
        answer = StreamedAnswer(on_delta, secrets=(self._api_key,), fail=self._error)
        started = time.monotonic()
        try:
            response = self._http.stream_lines("POST", self._url, json=body, headers=headers, service=self.name,
                                               timeout=timeout, cancel=cancel, on_line=answer.feed)
        except WorkflowError as exc:
            if isinstance(exc, UpstreamTimeout):
                exc = self._error(UpstreamTimeout, f"Request timed out after {float(timeout)}s")
            exc.service, exc.operation = exc.service or self.name, exc.operation or OPERATION
            if answer.started:
                exc.retryable = False
            raise exc from None
        duration_ms = int((time.monotonic() - started) * 1000)
        if not 200 <= response.status < 300:
            raise self._status_error(response)
        return self._parse(answer.completion(), request, duration_ms)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages,
                                "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.response_format:
            body["response_format"] = request.response_format
        if self._usage_accounting:
            body["usage"] = {"include": True}
        return body

    def _parse(self, data: dict, request: ChatRequest, duration_ms: int) -> ChatResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._error(UpstreamBadResponse, "No choices in response")
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not content:
            raise self._error(UpstreamBadResponse, "Empty content in response")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            log.warning("LLM provider %s returned no usage for model %s; counting zero tokens",
                        self.name, request.model)
            usage = {}
        input_tokens = _count(usage.get("prompt_tokens"))
        output_tokens = _count(usage.get("completion_tokens"))
        total = usage.get("total_tokens")
        cost = usage.get("cost")
        return ChatResponse(
            content=content,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=_count(total) if total is not None else input_tokens + output_tokens,
            response_id=data.get("id") if isinstance(data.get("id"), str) else None,
            model_used=data.get("model") if isinstance(data.get("model"), str) else None,
            provider_cost_usd=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            duration_ms=duration_ms,
        )

    def _status_error(self, response: HttpResponse) -> WorkflowError:
        code = response.status
        if code in (401, 403):
            return self._error(UpstreamAuthError, "Invalid API key", response)
        if code == 429:
            return self._error(UpstreamRateLimited, "Rate limit exceeded", response,
                               retry_after=response.retry_after())
        if code == 400:
            message = error_message_of(response)
            return self._error(UpstreamHTTPError,
                               f"Bad request: {clip(message, (self._api_key,)) if message else 'Bad request'}",
                               response)
        if code >= 500:
            return self._error(UpstreamServerError, f"{self.display_name} server error: {code}", response)
        return self._error(UpstreamHTTPError, f"HTTP error {code}", response)

    def _error(self, cls: type[WorkflowError], message: str, response: Optional[HttpResponse] = None,
               retry_after: Optional[float] = None) -> WorkflowError:
        return upstream_error(cls, message, service=self.name, operation=OPERATION, response=response,
                              secrets=(self._api_key,), retry_after=retry_after)


class StreamedAnswer:
    """An OpenAI-compatible streamed answer, read line by line: text pieces go out as they arrive, and at the end
    the answer reads as the completion the non-streamed call returns (id, model, the whole content, usage)."""

    def __init__(self, on_delta: Callable[[str], None], *, secrets: tuple[str, ...],
                 fail: Callable[..., WorkflowError]) -> None:
        self._on_delta, self._secrets, self._fail = on_delta, secrets, fail
        self._parser = SseParser()
        self._parts: list[str] = []
        self._head: dict[str, Any] = {}
        self._usage: Any = None
        self._events = 0
        self._plain: list[str] = []  # the body, while it does not look like events (a provider that ignored stream)
        self.started = False

    def feed(self, line: str) -> None:
        event = self._parser.feed(line)
        if event is None:
            if not self._events and line.strip():
                self._plain.append(line)
            return
        if event.comment is not None or not event.data:
            return
        self._events += 1
        if event.data.strip() == "[DONE]":
            return
        try:
            chunk = json.loads(event.data)
        except ValueError:
            raise self._fail(UpstreamBadResponse, "Malformed JSON in the streamed response") from None
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:  # a provider failing mid-stream (OpenRouter sends it as a chunk)
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise self._fail(UpstreamServerError,
                             f"Error in the streamed response: {clip(str(message), self._secrets)}")
        for key in ("id", "model"):
            if isinstance(chunk.get(key), str):
                self._head.setdefault(key, chunk[key])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                text = scrub_values(text, self._secrets)
                self._parts.append(text)
                self.started = True
                self._on_delta(text)

    def completion(self) -> dict:
        if not self._events and self._plain:  # not streamed after all: the whole answer, as complete() reads it
            try:
                data = json.loads("\n".join(self._plain))
            except ValueError:
                raise self._fail(UpstreamBadResponse, "Expected a streamed response, got something else") from None
            if not isinstance(data, dict):
                raise self._fail(UpstreamBadResponse, "Expected a streamed response, got something else")
            return scrub_values(data, self._secrets)
        answer = {**self._head, "choices": [{"message": {"role": "assistant", "content": "".join(self._parts)}}]}
        if self._usage is not None:
            answer["usage"] = scrub_values(self._usage, self._secrets)
        return answer


def _count(value: Any) -> int:
    """A token count from usage; anything non-numeric counts as zero rather than failing the call."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))
