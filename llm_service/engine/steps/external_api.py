"""The external API step: resolve parameters, consult the cache, take a rate-limit slot, call the service.

The old worker skipped the cache and the limiter entirely and ignored the step's ``error_mode``; here both are
wired in (fail-open: their own failures never fail the step) and errors are typed so the runner's one error-mode
policy applies. Result shape as before: ``{success, data, cached, metadata}``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..errors import RateLimitExceeded, WorkflowError
from ..references import find_references
from ..schema_fields import LenientSchema, Number, WholeNumber, error_mode_field, load_state
from .base import StepOutcome, StepRun
from .step_type import StepType

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step
    from ..plan import PlanBuilder, StepPlan
    from ..validation import CheckContext, Report


@dataclass(frozen=True)
class ExternalAPISettings:
    service: str
    operation: str
    parameters: dict
    cache_ttl: int | None
    timeout: float | None
    inner_error_mode: str | None


class ExternalAPIConfigSchema(LenientSchema):
    service = fields.String(required=True, error_messages={"required": "Missing required field: service"})
    method = fields.String(allow_none=True, load_default=None)
    operation = fields.String(allow_none=True, load_default=None)
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True,
                             load_default=None)
    config = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True,
                         load_default=None)
    cache_ttl = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(min=0))
    timeout = Number(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=3600))
    error_mode = error_mode_field()

    @validates_schema
    def _known(self, data: dict, **_: Any) -> None:
        operation = data.get("operation") or data.get("method")
        if not operation:
            raise ValidationError("Missing required field: operation (or its alias 'method')", "operation")
        known: Mapping[str, Any] | None = load_state.services
        service = data.get("service")
        if known is None or service is None:
            return
        if service not in known:
            raise ValidationError(
                f"Unknown service '{service}'. Allowed: {', '.join(sorted(known)) or 'none configured'}", "service")
        operations = known[service]
        if operation not in operations:
            raise ValidationError(
                f"Unknown operation '{operation}' for service '{service}'. Allowed: {', '.join(sorted(operations))}",
                "operation")

    @post_load
    def _make(self, data: dict, **_: Any) -> ExternalAPISettings:
        # Aliases as the old engine read them: `operation` wins over `method`; a non-empty `config` over `parameters`.
        return ExternalAPISettings(
            service=data["service"], operation=data.get("operation") or data["method"],
            parameters=dict(data.get("config") or data.get("parameters") or {}),
            cache_ttl=data["cache_ttl"], timeout=data["timeout"], inner_error_mode=data["error_mode"])


def run_external_api(run: StepRun) -> StepOutcome:
    settings: ExternalAPISettings = run.step.settings
    tools = run.tools
    params = run.resolver().resolve(settings.parameters)
    run.error_details = {"inputs": params, "config": run.step.config}
    service = tools.services.get(settings.service)

    ttl = tools.limits.cache_ttl_default if settings.cache_ttl is None else settings.cache_ttl
    upstream = service.upstream
    cached = tools.cache.get(settings.service, settings.operation, params, upstream=upstream) if ttl > 0 else None
    if cached is not None:
        run.report_upstream(settings.service, settings.operation, time.monotonic(), status=None, cached=True)
        return _outcome({"success": True, "data": cached, "cached": True, "metadata": {}})

    user_id = run.state.input_data.get("user_id") if isinstance(run.state.input_data, dict) else None
    user = str(user_id) if user_id else None
    refused = tools.limiter.acquire(settings.service, user)
    if refused is not None:
        limit_type, retry_after = refused
        raise RateLimitExceeded(f"Rate limit exceeded ({limit_type}). Retry after {int(retry_after)}s",
                                retry_after=retry_after, service=settings.service, operation=settings.operation)
    timeout = run.deadline.timeout_for(settings.timeout or tools.limits.external_api_timeout)
    try:
        answer = run.call_upstream(settings.service, settings.operation,
                                   lambda: service.call(settings.operation, params, timeout=timeout,
                                                        cancel=run.cancel))
    except Exception as exc:
        tools.limiter.release(settings.service, user)
        if isinstance(exc, WorkflowError):
            exc.service = exc.service or settings.service
            exc.operation = exc.operation or settings.operation
        raise
    if ttl > 0:
        tools.cache.set(settings.service, settings.operation, params, answer.data, ttl, upstream=upstream)
    return _outcome({"success": True, "data": answer.data, "cached": False, "metadata": answer.metadata})


def _outcome(result: dict) -> StepOutcome:
    return StepOutcome(result=result, entry_extra={"cached": result["cached"]})


# -- what validate and the plan ask of an external API step ------------------------------------------------------


def _references(step: "Step") -> Iterable[tuple[str, bool]]:
    for path in find_references(step.settings.parameters):
        yield path, True


def _check(report: "Report", step: "Step", context: "CheckContext") -> None:
    """The operation's required parameters (or one of its alternative groups) are given; unused ones warned of."""
    settings: ExternalAPISettings = step.settings
    try:
        spec = context.services.get(settings.service).operations.get(settings.operation)
    except Exception:  # unknown service: already reported by the schema
        return
    if spec is None:
        return
    given = set(settings.parameters)
    missing = [name for name in spec.required if name not in given]
    if missing:
        report.problem(step, f"{settings.service}.{settings.operation} needs parameter(s) {', '.join(missing)}")
    if spec.alternatives and not any(set(group) <= given for group in spec.alternatives):
        options = " or ".join("+".join(group) for group in spec.alternatives)
        report.problem(step, f"{settings.service}.{settings.operation} needs {options}")
    known = set(spec.required) | set(spec.optional) | {name for group in spec.alternatives for name in group}
    for name in sorted(given - known):
        report.warning(step, f"parameter '{name}' is not used by {settings.service}.{settings.operation}")


def _dry_run(builder: "PlanBuilder", plan: "StepPlan") -> None:
    settings: ExternalAPISettings = plan.step.settings
    builder.count(settings.service, 1, 1, plan)
    if builder.scope.given:
        plan.rendered = {"parameters": builder.scope.redact(builder.resolve(settings.parameters, plan))}


STEP_TYPE = StepType(
    name="external_api", order=30, schema=ExternalAPIConfigSchema, execute=run_external_api,
    summary=lambda settings: f"{settings.service}.{settings.operation}", references=_references, check=_check,
    provides=lambda settings: ["data", "cached", "metadata"], dry_run=_dry_run,
    mermaid_shape=("[/", "/]"), dot_shape="parallelogram")
