"""The LLM step: resolve variables, build the prompt, call an OpenAI-compatible provider, account for usage.

One user message carries the prompt, as before. ``system_prompt`` / ``system_prompt_template`` add a system message
and ``user_message`` adds a second user message; both are optional and additive, so old workflows send exactly
what they sent before (minus the ``top_p: null`` the old service always included).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..errors import LimitExceeded, PromptError, WorkflowCancelled, WorkflowError
from ..ports import ChatRequest
from ..pricing import calculate_cost, estimate_tokens, get_pricing
from ..prompts import INCLUDE, render_prompt
from ..references import NAMESPACES, PLACEHOLDER, find_references, namespace_of
from ..schema_fields import LenientSchema, Number, WholeNumber, error_mode_field
from ..structured_output import schema_of
from .base import StepOutcome, StepRun
from .llm_answer import ask, llm_summary, structured_outcome
from .step_type import StepType

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step
    from ..plan import PlanBuilder, StepPlan
    from ..validation import CheckContext, Report

DEFAULT_MODEL = "anthropic/claude-3.5-sonnet"


@dataclass(frozen=True)
class LLMSettings:
    model: str
    prompt_template: str | None
    prompt_text: str | None
    system_prompt: str | None
    system_prompt_template: str | None
    user_message: str | None
    temperature: float
    max_tokens: int
    timeout: float | None
    top_p: float | None
    variables: dict
    provider: str | None
    inner_error_mode: str | None
    response_format: dict | None = None
    max_format_retries: int = 1
    models: tuple[str, ...] = ()       # fallbacks after ``model``, tried in order
    stream: bool = False  # the answer arrives token by token; watchers see it as ``llm.token`` events

    @property
    def candidate_models(self) -> list[str]:
        """Every model the step may call, in the order they are tried."""
        return list(dict.fromkeys([self.model, *self.models]))


class LLMConfigSchema(LenientSchema):
    model = fields.String(load_default=None, validate=validate.Length(1, 200))
    prompt_template = fields.String(allow_none=True, load_default=None)
    prompt_text = fields.String(allow_none=True, load_default=None)
    system_prompt = fields.String(allow_none=True, load_default=None)
    system_prompt_template = fields.String(allow_none=True, load_default=None)
    user_message = fields.String(allow_none=True, load_default=None)
    temperature = Number(load_default=0.7, validate=validate.Range(0.0, 2.0))
    max_tokens = WholeNumber(load_default=4000, validate=validate.Range(1, 16000))
    timeout = Number(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=3600))
    top_p = Number(allow_none=True, load_default=None, validate=validate.Range(0.0, 1.0))
    variables = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    provider = fields.String(allow_none=True, load_default=None)
    error_mode = error_mode_field()
    streaming = fields.Raw(load_default=None)  # accepted and ignored, as before
    response_format = fields.Dict(allow_none=True, load_default=None)
    max_format_retries = WholeNumber(load_default=1, validate=validate.Range(0, 5))
    models = fields.List(fields.String(validate=validate.Length(1, 200)), load_default=list,
                         validate=validate.Length(max=10))
    stream = fields.Boolean(load_default=False)

    @validates_schema
    def _needs_prompt(self, data: dict, **_: Any) -> None:
        if not data.get("prompt_template") and not data.get("prompt_text"):
            raise ValidationError("Must provide either 'prompt_template' or 'prompt_text'", "prompt_template")

    @validates_schema
    def _response_format(self, data: dict, **_: Any) -> None:
        from ..structured_output import format_problems

        if data.get("response_format") is not None:
            problems = format_problems(data["response_format"])
            if problems:
                raise ValidationError(problems, "response_format")

    @post_load
    def _make(self, data: dict, **_: Any) -> LLMSettings:
        return LLMSettings(
            prompt_template=data["prompt_template"], prompt_text=data["prompt_text"],
            system_prompt=data["system_prompt"], system_prompt_template=data["system_prompt_template"],
            user_message=data["user_message"], temperature=data["temperature"], max_tokens=data["max_tokens"],
            timeout=data["timeout"], top_p=data["top_p"], variables=data["variables"], provider=data["provider"],
            inner_error_mode=data["error_mode"], response_format=data["response_format"],
            max_format_retries=data["max_format_retries"],
            # ``model`` is tried first; without it the first of ``models`` is the primary.
            model=data["model"] or (data["models"][0] if data["models"] else DEFAULT_MODEL),
            models=tuple(data["models"]), stream=data["stream"])


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
                          max_tokens=max_tokens, top_p=settings.top_p, response_format=settings.response_format)
    try:
        answer = ask(run, provider, request, settings, settings.timeout or limits.llm_timeout)
    except WorkflowCancelled:
        raise
    except WorkflowError as exc:
        raise exc.reworded(f"LLM step '{run.step.id}' execution failed: ")

    usage = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens,
             "total_tokens": answer.total_tokens}
    cost, response = answer.cost_usd, answer.response
    result = {
        "content": answer.content,
        "model": answer.model,
        "usage": usage,
        "cost_usd": cost,
        "duration_ms": answer.duration_ms,
        "provider": provider.name,
        "metadata": {"response_id": response.response_id, "model_used": response.model_used,
                     "cost_source": answer.cost_source, **answer.metadata()},
    }
    llm_usage = {"provider": provider.name, "model": answer.model, **usage, "cost_usd": cost,
                 "duration_ms": answer.duration_ms}
    call = {**llm_usage, "metadata": {"step_id": run.step.id, "response_id": response.response_id,
                                      "cost_source": answer.cost_source}}
    if answer.structured:
        return structured_outcome(answer, result, llm_usage, call)
    return StepOutcome(result=result, record_extra={"llm_usage": llm_usage},
                       entry_extra={"tokens": answer.total_tokens, "cost_usd": cost},
                       llm_call=call, entry_output=llm_summary(result))


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


# -- what validate, the plan and the runner ask of an LLM step ---------------------------------------------------


def _references(step: "Step") -> Iterable[tuple[str, bool]]:
    settings: LLMSettings = step.settings
    for path in find_references(settings.variables):
        yield path, True
    if settings.user_message:
        for path in find_references(settings.user_message):
            if namespace_of(path) in NAMESPACES:
                yield path, True


def _check(report: "Report", step: "Step", context: "CheckContext") -> None:
    settings: LLMSettings = step.settings
    prompts, providers = context.prompts, context.providers
    for template in _prompt_files(settings):
        problems = prompts.problems(template)
        for message in problems:
            report.problem(step, message)
        if not problems:
            text = prompts.load(template)
            for match in PLACEHOLDER.finditer(text):
                name = namespace_of(match.group(1)) or match.group(1)
                if name not in settings.variables:
                    report.warning(step, f"prompt {template} uses {match.group(0)} but the step defines no "
                                         f"variable '{name}' (it will be left as is)")
            for include in INCLUDE.finditer(text):  # pragma: no cover - expansion already replaced them
                report.problem(step, f"unexpanded include {include.group(0)}")
    if providers is not None and settings.provider and settings.provider not in providers.names():
        report.problem(step, f"unknown LLM provider '{settings.provider}'; configured: "
                             f"{', '.join(providers.names())}")
    elif providers is not None and settings.stream and not callable(
            getattr(providers.get(settings.provider), "stream", None)):
        report.warning(step, f"LLM provider '{settings.provider or providers.default}' cannot stream; "
                             "\"stream\": true is ignored (the answer arrives whole)")
    for model in settings.candidate_models:
        if get_pricing(model) is None:
            report.warning(step, f"model '{model}' is not in the price table: its cost is counted only when the "
                                 "provider reports it")
    listed = [m for m in (step.config.get("model"), *settings.models) if m]
    if len(listed) != len(set(listed)):
        report.warning(step, "'models' lists a model more than once; each is tried once")
    if "max_format_retries" in step.config and not settings.response_format:
        report.warning(step, "max_format_retries has no effect without response_format")


def _prompt_files(settings: LLMSettings) -> list[str]:
    return [name for name in (settings.prompt_template, settings.system_prompt_template) if name]


def _output_fields(settings: LLMSettings) -> set[str] | None:
    schema = schema_of(settings.response_format)
    if schema and isinstance(schema.get("properties"), dict) and schema.get("additionalProperties") is False:
        return set(schema["properties"])
    return None


def _provides(settings: LLMSettings) -> list[str]:
    schema = schema_of(settings.response_format)
    if schema is not None:
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        return [f"output.{name}" for name in properties] + ["content", "llm_usage", "llm"]
    return ["content", "model", "usage", "cost_usd", "llm_usage"]


def _summary(settings: LLMSettings) -> str:
    models = settings.candidate_models
    text = models[0] + (f" (fallbacks: {', '.join(models[1:])})" if len(models) > 1 else "")
    return text + (" -> structured output" if settings.response_format else "")


def _dry_run(builder: "PlanBuilder", plan: "StepPlan") -> None:
    """The calls the step may make; with prompts, the messages this executor would send (captured, not sent) and
    their token and cost estimates (see :mod:`..plan` for how they are counted)."""
    settings: LLMSettings = plan.step.settings
    try:
        provider = builder.providers.get(settings.provider).name
    except WorkflowError:  # an unknown provider: validate reports it
        provider = settings.provider or builder.providers.default
    candidates = settings.candidate_models
    attempts = 1 + (settings.max_format_retries if settings.response_format else 0)
    builder.count(provider, 1, len(candidates) * attempts, plan)
    request = builder.capture(plan) if builder.prompts is not None else None
    if request is None:
        return
    text = "\n\n".join(str(message.get("content") or "") for message in request.messages)
    prompt_tokens, output_tokens = estimate_tokens(text), request.max_tokens
    if builder.scope.given:
        plan.rendered = {"messages": [{"role": m["role"], "content": builder.scope.redact(str(m["content"]))}
                                      for m in request.messages]}
    priced = [model for model in candidates if get_pricing(model) is not None]
    worst = plan.attempts * max((0.0, *(_attempts_cost(m, prompt_tokens, output_tokens, attempts) for m in priced)))
    plan.estimate = {
        "provider": provider, "model": candidates[0], "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens, "priced": candidates[0] in priced,
        "cost_usd": calculate_cost(candidates[0], prompt_tokens, output_tokens) if candidates[0] in priced
        else None,
        "max_cost_usd": round(worst, 6) if priced else None,
        "basis": "rendered input" if builder.scope.given else "templates, references unfilled"}


def _attempts_cost(model: str, prompt_tokens: int, output_tokens: int, attempts: int) -> float:
    """Cost when every format retry happens: each one resends the conversation plus the previous answer."""
    return sum(calculate_cost(model, prompt_tokens + k * output_tokens, output_tokens) for k in range(attempts))


def _entry_output(record: Mapping[str, Any]) -> Any:
    usage = record.get("usage")
    return llm_summary(record) if isinstance(usage, dict) and "total_tokens" in usage else record.get("output")


STEP_TYPE = StepType(
    name="llm", order=10, schema=LLMConfigSchema, execute=run_llm, summary=_summary, references=_references,
    check=_check, prompt_files=_prompt_files, output_fields=_output_fields, provides=_provides, entry_output=_entry_output,
    dry_run=_dry_run,
    mermaid_shape=("([", "])"), dot_shape="ellipse")
