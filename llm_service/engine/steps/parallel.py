"""The ``parallel`` step: run its child steps at once, at most ``max_concurrency`` (capped by PARALLEL_MAX_WIDTH).

Children are ordinary steps with their own ids, error modes and records (``steps.<child>``); the parallel step's
output maps each child id to that child's output. A child failing under ``fail`` stops its siblings and fails the
parallel step, whose own error mode then decides.
"""
from __future__ import annotations

from ..definitions import ParallelSettings
from .base import StepOutcome, StepRun


def run_parallel(run: StepRun) -> StepOutcome:
    settings: ParallelSettings = run.step.settings
    cap = run.tools.limits.parallel_max_width
    width = settings.max_concurrency or cap
    if width > cap:
        run.warnings.append(f"max_concurrency {width} capped at {cap} (PARALLEL_MAX_WIDTH)")
        width = cap
    run.run.run_concurrently(settings.children, max(1, min(width, len(settings.children))), run.cancel)
    return StepOutcome(result={child.id: run.state.output_of(child.id) for child in settings.children})
