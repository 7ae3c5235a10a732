"""The transform step: choose the input, resolve the parameters, run one of the ten operations.

Input selection is the old engine's: ``config.input`` (a path, with or without the ``${}`` wrapper), else a
non-null ``source`` parameter, else the whole context. Placeholders in parameters whose first segment is not a
namespace (template variables such as ``${hospitals}``) are left for the operation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from marshmallow import ValidationError, fields, post_load, validates_schema

from ..references import find_references
from ..schema_fields import LenientSchema, error_mode_field
from ..transforms import run_transform
from .base import StepOutcome, StepRun
from .step_type import StepType

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step
    from ..plan import PlanBuilder, StepPlan

@dataclass(frozen=True)
class TransformSettings:
    operation: str
    input: str | None
    params: dict
    inner_error_mode: str | None
    default_value: Any = None


class TransformConfigSchema(LenientSchema):
    operation = fields.String(required=True)
    input = fields.String(allow_none=True, load_default=None)
    config = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    error_mode = error_mode_field()
    default_value = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _operation(self, data: dict, **_: Any) -> None:
        from ..transforms import OPERATION_NAMES, validate_params

        operation = data.get("operation")
        if operation is None:
            return
        if operation not in OPERATION_NAMES:
            raise ValidationError(
                f"Unknown transformation '{operation}'. Allowed: {', '.join(OPERATION_NAMES)}", "operation")
        problems = validate_params(operation, data.get("config") or {})
        if problems:
            raise ValidationError(problems, "config")

    @post_load
    def _make(self, data: dict, **_: Any) -> TransformSettings:
        return TransformSettings(operation=data["operation"], input=data["input"], params=data["config"],
                                 inner_error_mode=data["error_mode"], default_value=data["default_value"])


# Operations that read a literal ``source`` as a key of their input rather than as the input itself.
_KEY_SOURCE_OPERATIONS = ("extract_fields", "markdown_to_json")


def run_transform_step(run: StepRun) -> StepOutcome:
    settings: TransformSettings = run.step.settings
    params = run.resolver(foreign="keep").resolve(settings.params)
    data = _select_input(run, settings, params)
    result = run_transform(settings.operation, data, params, lenient=run.mode == "continue")
    return StepOutcome(result=result)


def _select_input(run: StepRun, settings: TransformSettings, params: dict) -> Any:
    if settings.input:
        path = settings.input.strip()
        if path.startswith("${") and path.endswith("}"):
            path = path[2:-1]
        return run.state.lookup(path)
    raw_source = settings.params.get("source")
    literal_key = isinstance(raw_source, str) and "${" not in raw_source
    if "source" in params and params["source"] is not None and not (
            literal_key and settings.operation in _KEY_SOURCE_OPERATIONS):
        return params.pop("source")
    return run.state.context_map()


# -- what validate, scheduling and the plan ask of a transform step ----------------------------------------------


def _references(step: "Step") -> Iterable[tuple[str, bool]]:
    settings: TransformSettings = step.settings
    if settings.input:
        text = settings.input.strip()
        path = text[2:-1] if text.startswith("${") and text.endswith("}") else text
        yield path, True
    for path in find_references(settings.params):
        yield path, False


def _reads_whole_context(step: "Step") -> bool:
    """Neither ``input`` nor ``source``: the transform receives the whole context."""
    settings: TransformSettings = step.settings
    return not settings.input and settings.params.get("source") is None


def _dry_run(builder: "PlanBuilder", plan: "StepPlan") -> None:
    settings: TransformSettings = plan.step.settings
    if builder.scope.given and settings.input:
        resolved = builder.resolve(settings.input, plan)
        if resolved != settings.input:
            plan.rendered = {"input": builder.scope.redact(resolved)}


STEP_TYPE = StepType(
    name="transform", order=20, schema=TransformConfigSchema, execute=run_transform_step,
    summary=lambda settings: settings.operation, references=_references, reads_whole_context=_reads_whole_context,
    dry_run=_dry_run, mermaid_shape=("[", "]"), dot_shape="box")
