"""The LLM step: resolve variables, build the prompt, call an OpenAI-compatible provider, account for usage.

One user message carries the prompt, as before. ``system_prompt`` / ``system_prompt_template`` add a system message
and ``user_message`` adds a second user message; both are optional and additive, so old workflows send exactly
what they sent before (minus the ``top_p: null`` the old service always included).
"""
from __future__ import annotations

from typing import Any

from ..definitions import LLMSettings
from ..errors import LimitExceeded, PromptError, WorkflowCancelled, WorkflowError
from ..ports import ChatRequest
from ..pricing import choose_cost
from ..prompts import render_prompt
from ..state import llm_summary
from .base import StepOutcome, StepRun


def run_llm(run: StepRun) -> StepOutcome:
    settings: LLMSettings = run.step.settings
    limits = run.tools.limits
    variables = run.resolver().resolve(settings.variables)

    messages: list[dict[str, str]] = []
    system = _text(run, settings.system_prompt_template, settings.system_prompt, variables)
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": _text(run, settings.prompt_template, settings.prompt_text,
                                                        variables)})
    if settings.user_message:
        extra = run.resolver(foreign="keep").resolve_string(settings.user_message)
        rendered, warnings = render_prompt(str(extra), variables)
        run.warnings.extend(warnings)
        messages.append({"role": "user", "content": rendered})

    max_tokens = settings.max_tokens
    if max_tokens > limits.llm_max_tokens_cap:
        run.warnings.append(f"max_tokens {max_tokens} capped at {limits.llm_max_tokens_cap} (LLM_MAX_TOKENS_CAP)")
        max_tokens = limits.llm_max_tokens_cap
    if limits.max_llm_cost_usd and run.state.spent_usd() >= limits.max_llm_cost_usd:
        raise LimitExceeded(
            f"This job has spent ${run.state.spent_usd():.4f} on LLM calls, reaching the "
            f"${limits.max_llm_cost_usd:g} cap (JOB_MAX_LLM_COST_USD); step '{run.step.id}' was not run")

    provider = run.tools.providers.get(settings.provider)
    request = ChatRequest(model=settings.model, messages=messages, temperature=settings.temperature,
                          max_tokens=max_tokens, top_p=settings.top_p)
    timeout = run.deadline.timeout_for(settings.timeout or limits.llm_timeout)
    try:
        response = run.call_upstream(provider.name, "chat_completions",
                                     lambda: _ask(run, provider, request, timeout))
    except WorkflowCancelled:
        raise
    except WorkflowError as exc:
        raise exc.reworded(f"LLM step '{run.step.id}' execution failed: ")

    cost, cost_source = choose_cost(requested_model=settings.model, reported_model=response.model_used,
                                    input_tokens=response.input_tokens, output_tokens=response.output_tokens,
                                    provider_cost=response.provider_cost_usd)
    usage = {"input_tokens": response.input_tokens, "output_tokens": response.output_tokens,
             "total_tokens": response.total_tokens}
    result = {
        "content": response.content,
        "model": settings.model,
        "usage": usage,
        "cost_usd": cost,
        "duration_ms": response.duration_ms,
        "provider": provider.name,
        "metadata": {"response_id": response.response_id, "model_used": response.model_used,
                     "cost_source": cost_source},
    }
    llm_usage = {"provider": provider.name, "model": settings.model, **usage, "cost_usd": cost,
                 "duration_ms": response.duration_ms}
    call = {**llm_usage, "metadata": {"step_id": run.step.id, "response_id": response.response_id,
                                      "cost_source": cost_source}}
    return StepOutcome(result=result, record_extra={"llm_usage": llm_usage},
                       entry_extra={"tokens": response.total_tokens, "cost_usd": cost},
                       llm_call=call, entry_output=llm_summary(result))


def _ask(run: StepRun, provider: Any, request: ChatRequest, timeout: float) -> Any:
    """The provider's answer; streamed (``"stream": true``) when someone listens for tokens and the provider can
    stream. Either way the response is the same, so output, usage and cost do not depend on streaming."""
    listener = run.run.listener
    stream = getattr(provider, "stream", None)
    if run.step.settings.stream and listener.hears_tokens and callable(stream):
        step_id = run.step.id
        return stream(request, timeout=timeout, cancel=run.cancel,
                      on_delta=lambda delta: listener.llm_token(step_id, delta))
    return provider.complete(request, timeout=timeout, cancel=run.cancel)


def _text(run: StepRun, template: str | None, inline: str | None, variables: dict[str, Any]) -> str | None:
    """Template file wins over inline text, as before; either gets ``${var}`` substitution."""
    if template:
        try:
            raw = run.tools.prompts.load(template)
        except PromptError as exc:
            raise exc.reworded(f"Error loading prompt template '{template}': ")
    elif inline:
        raw = inline
    else:
        return None
    text, warnings = render_prompt(raw, variables)
    run.warnings.extend(warnings)
    return text
