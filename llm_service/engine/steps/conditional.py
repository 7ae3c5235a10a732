"""The ``conditional`` step: evaluate a safe expression, run the ``then`` or the ``else`` steps.

The condition is parsed by :mod:`..expressions` (no ``eval``). References to data that is missing, or to steps
that failed or were skipped, read as null, so ``exists(${steps.x.data})`` works as a guard. Steps of the branch
not taken are recorded as skipped: they appear in ``steps_executed`` with ``skipped: true`` and references to them
resolve to null.
"""
from __future__ import annotations

from typing import Any

from ..definitions import ConditionalSettings
from ..errors import CONFIG_ERROR, ReferenceError_
from ..expressions import evaluate_condition
from .base import StepOutcome, StepRun


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
    run.run.record_skipped(other)
    run.run.run_sequence(chosen, run.cancel)
    return StepOutcome(result={"condition": taken, "branch": "then" if taken else "else"})
