"""The ``parallel`` step: run its child steps at once, at most ``max_concurrency`` (capped by PARALLEL_MAX_WIDTH).

Children are ordinary steps with their own ids, error modes and records (``steps.<child>``); the parallel step's
output maps each child id to that child's output. A child failing under ``fail`` stops its siblings and fails the
parallel step, whose own error mode then decides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marshmallow import post_load, validate

from ..schema_fields import LenientSchema, WholeNumber, error_mode_field, step_list
from .base import StepOutcome, StepRun
from .step_type import Nesting, StepType

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step


@dataclass
class ParallelSettings:
    children: list["Step"]
    max_concurrency: int | None
    inner_error_mode: str | None = None


class ParallelConfigSchema(LenientSchema):
    steps = step_list(required=True, validate=validate.Length(min=1))
    max_concurrency = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(min=1, max=1000))
    error_mode = error_mode_field()

    @post_load
    def _make(self, data: dict, **_: Any) -> ParallelSettings:
        return ParallelSettings(children=data["steps"], max_concurrency=data["max_concurrency"],
                                inner_error_mode=data["error_mode"])


def run_parallel(run: StepRun) -> StepOutcome:
    settings: ParallelSettings = run.step.settings
    cap = run.tools.limits.parallel_max_width
    width = settings.max_concurrency or cap
    if width > cap:
        run.warnings.append(f"max_concurrency {width} capped at {cap} (PARALLEL_MAX_WIDTH)")
        width = cap
    run.run_children(settings.children, width=max(1, min(width, len(settings.children))))
    return StepOutcome(result={child.id: run.state.output_of(child.id) for child in settings.children})


def _summary(settings: ParallelSettings) -> str:
    return f"{len(settings.children)} steps at once" + (
        f" (at most {settings.max_concurrency})" if settings.max_concurrency else "")


STEP_TYPE = StepType(
    name="parallel", order=50, schema=ParallelConfigSchema, execute=run_parallel, summary=_summary,
    nests=(Nesting(key="steps", attribute="children", branch="parallel"),), concurrent=True,
    provides=lambda settings: [child.id for child in settings.children],
    mermaid_shape=("[[", "]]"), dot_shape="box3d")
