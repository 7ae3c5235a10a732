"""OpenAI-compatible chat completions (OpenRouter, OpenAI, any ``LLM_PROVIDER_<NAME>_*`` endpoint).

Request and error messages follow the old OpenRouter provider, with these fixes: ``top_p`` (and ``temperature``)
are sent only when set instead of as ``null``; parse failures are reported once, not double-prefixed with
"Unexpected error"; a response without ``usage`` is accepted with zero tokens rather than failing a call whose
content arrived; and with ``usage_accounting`` (OpenRouter) the provider is asked for, and we keep, its real cost.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Optional

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
        require_credential(self._api_key, f"{self._api_key_env} is not set: LLM provider '{self.name}' needs it",
                           service=self.name, operation=OPERATION)
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json",
                   **self._extra_headers}
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


def _count(value: Any) -> int:
    """A token count from usage; anything non-numeric counts as zero rather than failing the call."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))
