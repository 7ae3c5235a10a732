"""Getting one usable answer for an LLM step: model fallbacks, then structured-output checks with format retries.

Fallbacks: the step's models are tried in order when the provider fails in a way another model may not (429, 5xx,
timeouts, dropped connections, unreadable answers); a 4xx request error or a bad key fails at once, since every
model would get the same request. All of it happens inside one step attempt, so the runner's retries (which start
again from the first model) and the workflow deadline bound it as they bound a single call.

Structured output: with a ``response_format`` the answer is parsed and validated; a mismatch is fed back to the
model (its wrong answer plus what did not match) up to ``max_format_retries`` times. Every call is paid for, so
tokens and cost add up over fallbacks-that-answered and format retries alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ExternalAPIError
from ..ports import ChatProvider, ChatRequest, ChatResponse
from ..pricing import choose_cost
from ..structured_output import OutputMismatch, StructuredOutputError, feedback_message, parse_answer, schema_of
from .base import StepOutcome, StepRun

if TYPE_CHECKING:  # pragma: no cover
    from .llm import LLMSettings

OPERATION = "chat_completions"
LLM_SUMMARY_CHARS = 200
UNSTRUCTURED = object()


@dataclass
class Answer:
    content: str
    model: str                       # the model that gave the answer used
    response: ChatResponse           # its response (id, reported model)
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    cost_source: str = "price_table"
    duration_ms: int = 0
    calls: int = 0
    parsed: Any = UNSTRUCTURED
    fallbacks: list[dict] = field(default_factory=list)  # [{"model", "error"}] for each model that failed

    @property
    def structured(self) -> bool:
        return self.parsed is not UNSTRUCTURED

    def add(self, response: ChatResponse, model: str) -> None:
        cost, source = choose_cost(requested_model=model, reported_model=response.model_used,
                                   input_tokens=response.input_tokens, output_tokens=response.output_tokens,
                                   provider_cost=response.provider_cost_usd)
        self.content, self.model, self.response = response.content, model, response
        self.input_tokens += response.input_tokens
        self.output_tokens += response.output_tokens
        self.total_tokens += response.total_tokens
        self.cost_usd = round(self.cost_usd + cost, 6)
        self.cost_source = source if self.calls == 0 or source == self.cost_source else "mixed"
        self.duration_ms += response.duration_ms
        self.calls += 1

    def metadata(self) -> dict:
        """What goes into the step result's ``metadata`` beyond the single-call fields."""
        extra: dict[str, Any] = {}
        if self.fallbacks:
            extra["models_failed"] = list(self.fallbacks)
        if self.calls > 1:
            extra["calls"] = self.calls
        if self.structured:
            extra["structured"] = True
        return extra


def ask(run: StepRun, provider: ChatProvider, request: ChatRequest, settings: LLMSettings,
        timeout_seconds: float) -> Answer:
    schema = schema_of(settings.response_format)
    tries = 1 + settings.max_format_retries if schema is not None else 1
    answer: Answer | None = None
    fallbacks: list[dict] = []
    models = settings.candidate_models
    for attempt in range(1, tries + 1):
        response, model = _complete(run, provider, request, models, timeout_seconds, fallbacks)
        models = models[models.index(model):]  # a format retry goes to the model that answered (then on)
        if answer is None:
            answer = Answer(content="", model=model, response=response, fallbacks=fallbacks)
        answer.add(response, model)
        if schema is None:
            return answer
        try:
            answer.parsed = parse_answer(response.content, schema)
            return answer
        except OutputMismatch as problem:
            if attempt == tries:
                raise StructuredOutputError(
                    f"Model '{model}' did not return the requested structured output after {tries} "
                    f"attempt(s): {problem}", service=provider.name, operation=OPERATION,
                    details={"model": model, "attempts": tries, "answer_start": response.content[:200]}) from None
            run.warnings.append(f"structured output attempt {attempt}/{tries} from '{model}': {problem}; retrying")
            request = request.replace(messages=[*request.messages, {"role": "assistant", "content": response.content},
                                                {"role": "user", "content": feedback_message(problem, schema)}])
    raise AssertionError("unreachable")  # pragma: no cover


def falls_back(exc: BaseException) -> bool:
    """A provider failure another model may not have: rate limits, 5xx, timeouts, connection or answer problems."""
    return isinstance(exc, ExternalAPIError) and bool(exc.retryable)


def _complete(run: StepRun, provider: ChatProvider, request: ChatRequest, models: list[str], timeout_seconds: float,
              fallbacks: list[dict]) -> tuple[ChatResponse, str]:
    for index, model in enumerate(models):
        if index:
            run.deadline.check(f"before falling back to model '{model}' in step '{run.step.id}'")
        attempt = request.replace(model=model)
        timeout = run.deadline.timeout_for(timeout_seconds)
        try:
            response = run.call_upstream(provider.name, OPERATION, lambda: _send(run, provider, attempt, timeout))
            return response, model
        except Exception as exc:
            last = index == len(models) - 1
            if last or not falls_back(exc) or run.cancel.is_cancelled():
                if fallbacks and isinstance(exc, ExternalAPIError):
                    exc.details.setdefault("models_failed", [*fallbacks, {"model": model, "error": _said(exc)}])
                raise
            fallbacks.append({"model": model, "error": _said(exc)})
            run.warnings.append(f"model '{model}' failed ({_said(exc)}); falling back to '{models[index + 1]}'")
    raise AssertionError("no models")  # pragma: no cover - candidate_models is never empty


def _send(run: StepRun, provider: ChatProvider, request: ChatRequest, timeout: float) -> ChatResponse:
    """The provider's answer; streamed (``"stream": true``) when someone listens for tokens and the provider can
    stream. Either way the response is the same, so output, usage and cost do not depend on streaming."""
    stream = getattr(provider, "stream", None)
    listener = run.listener if run.step.settings.stream and callable(stream) else None
    if listener is not None and listener.hears_tokens:
        step_id = run.step.id
        return stream(request, timeout=timeout, cancel=run.cancel,
                      on_delta=lambda delta: listener.llm_token(step_id, delta))
    return provider.complete(request, timeout=timeout, cancel=run.cancel)


def _said(exc: BaseException) -> str:
    kind = getattr(exc, "kind", type(exc).__name__)
    return f"{kind}: {exc}"


def structured_outcome(answer: Answer, result: dict, llm_usage: dict, call: dict) -> StepOutcome:
    """The step's output is the parsed answer (so ``steps.<id>.output.<field>`` works); the raw text stays
    readable as ``steps.<id>.content`` and the usual LLM result as ``steps.<id>.llm``."""
    summary = {**llm_summary(result), "parsed": answer.parsed}
    return StepOutcome(result=answer.parsed,
                       record_extra={"llm_usage": llm_usage, "content": answer.content, "llm": result},
                       entry_extra={"tokens": answer.total_tokens, "cost_usd": answer.cost_usd},
                       llm_call=call, entry_output=summary)


def llm_summary(result: Mapping[str, Any]) -> dict:
    """The short form of an LLM result kept in ``steps_executed`` (as the old engine did)."""
    content = result.get("content") or ""
    if len(content) > LLM_SUMMARY_CHARS:
        content = content[:LLM_SUMMARY_CHARS] + "..."
    return {"content": content, "model": result.get("model"), "tokens": result["usage"]["total_tokens"],
            "cost_usd": result.get("cost_usd"), "duration_ms": result.get("duration_ms")}
