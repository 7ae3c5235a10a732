"""The ``conditional`` step: evaluate a safe expression, run the ``then`` or the ``else`` steps.

The condition is parsed by :mod:`..expressions` (no ``eval``). References to data that is missing, or to steps
that failed or were skipped, read as null, so ``exists(${steps.x.data})`` works as a guard. Steps of the branch
not taken are recorded as skipped: they appear in ``steps_executed`` with ``skipped: true`` and references to them
resolve to null.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..errors import CONFIG_ERROR, ReferenceError_, WorkflowError
from ..expressions import ExpressionError, evaluate_condition, parse
from ..schema_fields import LenientSchema, error_mode_field, step_list
from .base import StepOutcome, StepRun
from .step_type import Nesting, StepType

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step
    from ..plan import PlanBuilder, StepPlan


@dataclass
class ConditionalSettings:
    condition: str
    then: list["Step"]
    otherwise: list["Step"]
    inner_error_mode: str | None = None


class ConditionalConfigSchema(LenientSchema):
    condition = fields.String(required=True, validate=validate.Length(1, 2000))
    then = step_list(load_default=list)
    else_ = step_list(load_default=list, data_key="else")
    error_mode = error_mode_field()

    @validates_schema
    def _parse_condition(self, data: dict, **_: Any) -> None:
        if "condition" in data:
            try:
                parse(data["condition"])
            except ExpressionError as exc:
                raise ValidationError(str(exc), "condition") from None

    @post_load
    def _make(self, data: dict, **_: Any) -> ConditionalSettings:
        return ConditionalSettings(condition=data["condition"], then=data["then"], otherwise=data["else_"],
                                   inner_error_mode=data["error_mode"])


def run_conditional(run: StepRun) -> StepOutcome:
    settings: ConditionalSettings = run.step.settings

    def resolve(path: str) -> Any:
        try:
            return run.state.lookup(path)
        except ReferenceError_ as exc:
            if exc.category == CONFIG_ERROR and "Unknown namespace" in str(exc):
                raise
            return None

    taken = evaluate_condition(settings.condition, resolve)
    chosen, other = (settings.then, settings.otherwise) if taken else (settings.otherwise, settings.then)
    run.skip(other)
    run.run_children(chosen)
    return StepOutcome(result={"condition": taken, "branch": "then" if taken else "else"})


# -- what validate and the plan ask of a conditional step --------------------------------------------------------


def _references(step: "Step") -> Iterable[tuple[str, bool]]:
    for path in parse(step.settings.condition).references():
        yield path, True


def _dry_run(builder: "PlanBuilder", plan: "StepPlan") -> None:
    """A condition that reads only the input can be decided before the run, as the step would decide it."""
    if not builder.scope.given or plan.needs or plan.reads_all_earlier:
        return

    def resolve(path: str) -> Any:
        try:
            return builder.scope.scope.lookup(path)
        except ReferenceError_:
            return None
    try:
        taken = evaluate_condition(plan.step.settings.condition, resolve)
    except WorkflowError as exc:
        plan.problems.append(f"the condition cannot be evaluated with this input: {exc}")
        return
    plan.rendered = {"condition": taken, "branch": "then" if taken else "else"}


STEP_TYPE = StepType(
    name="conditional", order=40, schema=ConditionalConfigSchema, execute=run_conditional,
    summary=lambda settings: f"if {settings.condition}",
    nests=(Nesting(key="then", attribute="then", branch="then"), Nesting(key="else", attribute="otherwise",
                                                                         branch="else")),
    references=_references, provides=lambda settings: ["condition", "branch"], dry_run=_dry_run,
    mermaid_shape=("{", "}"), dot_shape="diamond")
