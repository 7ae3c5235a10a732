"""The collaborators the engine is given, as small interfaces.

The engine never builds infrastructure itself: the CLI, the worker and the tests hand it a clock, a cache, a rate
limiter, an HTTP helper, a cancellation token and an observer. That is what keeps ``llm_service.engine`` free of
Flask, Celery and Redis, and what lets one test swap a fake clock in.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Protocol, runtime_checkable


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time. ``time.sleep`` is green under eventlet/gevent monkey-patching."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@runtime_checkable
class CancelToken(Protocol):
    def is_cancelled(self) -> bool: ...


class NeverCancelled:
    def is_cancelled(self) -> bool:
        return False


class CancelFlag:
    """An in-process token: ``cancel()`` from any thread; the engine notices between steps and while waiting."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()


class AnyCancelled:
    """Cancelled when any of the given tokens is (the job's token, or a sibling step failing)."""

    def __init__(self, *tokens: CancelToken) -> None:
        self._tokens = tokens

    def is_cancelled(self) -> bool:
        return any(t.is_cancelled() for t in self._tokens)


class Cache(Protocol):
    """Upstream response cache. Implementations must fail open: on their own errors, behave as a miss.
    ``upstream`` identifies who answers (the service's base URL), so different upstreams never share entries."""

    def get(self, service: str, operation: str, params: Mapping[str, Any], *, upstream: str = "") -> Any | None: ...
    def set(self, service: str, operation: str, params: Mapping[str, Any], data: Any, ttl: int, *,
            upstream: str = "") -> None: ...


class RateLimiter(Protocol):
    """Sliding-window limits per service and per user. Implementations must fail open.

    ``acquire`` records the call when allowed and returns ``None``; when refused it records nothing and returns
    ``(limit_type, retry_after_seconds)``. ``release`` gives back a slot taken by a call whose upstream failed
    (failed calls do not consume quota, as before).
    """

    def acquire(self, service: str, user_id: str | None = None) -> tuple[str, float] | None: ...
    def release(self, service: str, user_id: str | None = None) -> None: ...


class NullCache:
    def get(self, service: str, operation: str, params: Mapping[str, Any], *, upstream: str = "") -> Any | None:
        return None

    def set(self, service: str, operation: str, params: Mapping[str, Any], data: Any, ttl: int, *,
            upstream: str = "") -> None:
        return None


class NullRateLimiter:
    def acquire(self, service: str, user_id: str | None = None) -> tuple[str, float] | None:
        return None

    def release(self, service: str, user_id: str | None = None) -> None:
        return None


class Observer(Protocol):
    """Hooks for logs and metrics. Every method must be cheap and must not raise."""

    def step_finished(self, *, job_id: str | None, step_id: str, step_type: str, success: bool,
                      duration_ms: int, error: Mapping[str, Any] | None, cached: bool | None) -> None: ...

    def upstream_call(self, *, job_id: str | None, service: str, operation: str, status: int | None,
                      duration_ms: int, cached: bool, error_type: str | None) -> None: ...


class NullObserver:
    def step_finished(self, **_: Any) -> None:
        return None

    def upstream_call(self, **_: Any) -> None:
        return None


ProgressCallback = Callable[[str, int, int, Mapping[str, Any]], None]
"""``progress(step_id, steps_completed, total_steps, step_entry)`` after each step finishes."""

RecordSink = Callable[[str, Mapping[str, Any]], None]
"""``sink(step_id, record)`` with a step's full record (``steps.<id>``) as the step finishes, to keep for a re-run."""


@runtime_checkable
class RunListener(Protocol):
    """What one run reports while it goes (progress bars, event streams). ``Engine.run(progress=...)`` takes one of
    these or a plain :data:`ProgressCallback` (which hears only about finished steps). Implementations must be
    cheap: they are called on the step's own thread; their errors are logged and ignored."""

    def step_started(self, step_id: str, position: int, total: int, name: str) -> None: ...

    def step_finished(self, step_id: str, finished: int, total: int, entry: Mapping[str, Any]) -> None: ...


class TokenListener(Protocol):
    """A :class:`RunListener` that also hears streamed LLM text (steps with ``"stream": true``): ``delta`` is the
    text that just arrived, in order. Optional: a listener without ``llm_token`` is simply not told."""

    def llm_token(self, step_id: str, delta: str) -> None: ...


# --------------------------------------------------------------------------------------------------------------
# Integrations: external API services and LLM chat providers. Implementations live in llm_service.integrations.

class OperationSpec:
    """What an operation accepts: used by ``validate`` and to fail early with a message that says what to fix."""

    def __init__(self, name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
                 alternatives: tuple[tuple[str, ...], ...] = ()) -> None:
        self.name = name
        self.required = required
        self.optional = optional
        # Groups of which at least one must be complete, e.g. weather: (("q",), ("lat", "lng")).
        self.alternatives = alternatives


class ServiceResult:
    """A successful upstream answer: ``data`` is the upstream JSON unchanged."""

    def __init__(self, data: Any, metadata: Mapping[str, Any] | None = None, status: int = 200) -> None:
        self.data = data
        self.metadata = dict(metadata or {})
        self.status = status


class ExternalService(Protocol):
    """One upstream API (WeatherAPI, Google Places). ``call`` raises typed errors from ``engine.errors``:
    UserInputError for bad parameters, MissingCredentialError when its key is unset, Upstream* otherwise."""

    name: str
    operations: Mapping[str, OperationSpec]
    upstream: str  # who answers (its base URL): part of the cache key

    def call(self, operation: str, params: Mapping[str, Any], *, timeout: float,
             cancel: CancelToken | None = None) -> ServiceResult: ...


class ServiceRegistry(Protocol):
    def get(self, name: str) -> ExternalService: ...
    def names(self) -> list[str]: ...


class ChatRequest:
    def __init__(self, *, model: str, messages: list[dict], temperature: float | None, max_tokens: int,
                 top_p: float | None = None, response_format: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.top_p = top_p
        self.response_format = response_format  # OpenAI-style structured output, sent as given

    def replace(self, **changes: Any) -> "ChatRequest":
        """The same request for another model or with more messages (fallbacks, format retries)."""
        values = {"model": self.model, "messages": self.messages, "temperature": self.temperature,
                  "max_tokens": self.max_tokens, "top_p": self.top_p, "response_format": self.response_format}
        return ChatRequest(**{**values, **changes})


class ChatResponse:
    def __init__(self, *, content: str, input_tokens: int, output_tokens: int, total_tokens: int,
                 response_id: str | None = None, model_used: str | None = None,
                 provider_cost_usd: float | None = None, duration_ms: int = 0) -> None:
        self.content = content
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.total_tokens = total_tokens
        self.response_id = response_id
        self.model_used = model_used
        self.provider_cost_usd = provider_cost_usd
        self.duration_ms = duration_ms


class ChatProvider(Protocol):
    """An OpenAI-compatible chat completions endpoint. ``complete`` raises typed errors from ``engine.errors``."""

    name: str

    def complete(self, request: ChatRequest, *, timeout: float,
                 cancel: CancelToken | None = None) -> ChatResponse: ...

    # Optional: ``stream(request, *, timeout, cancel, on_delta) -> ChatResponse`` asks for a streamed answer,
    # calls ``on_delta(text)`` as it arrives and returns exactly what ``complete`` returns for the same answer.


class ProviderRegistry(Protocol):
    default: str

    def get(self, name: str | None) -> ChatProvider: ...
    def names(self) -> list[str]: ...
