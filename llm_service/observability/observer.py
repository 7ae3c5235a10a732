"""The engine's :class:`~llm_service.engine.ports.Observer` for the worker: metrics plus one log event per call.

Events carry identifiers and measurements only (job id, step id, types, status, durations, cache hit), never the
step's inputs or outputs, and never an error *message* (messages can quote input data): the error's type and
category say what went wrong; the job record holds the full context.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from ..logs import event
from .metrics import WorkerMetrics, never_raises, upstream_outcome

log = logging.getLogger("llm_service.engine")


class MetricsObserver:
    """``step.finished`` at INFO (WARNING when the step failed) and ``upstream.call`` at DEBUG (INFO when the call
    failed: retried failures are otherwise invisible, since only the step's final outcome is logged)."""

    def __init__(self, metrics: WorkerMetrics, logger: logging.Logger | None = None) -> None:
        self.metrics = metrics
        self.log = logger or log

    @never_raises
    def step_finished(self, *, job_id: str | None, step_id: str, step_type: str, success: bool,
                      duration_ms: int, error: Mapping[str, Any] | None, cached: bool | None) -> None:
        self.metrics.step(step_type=step_type, success=success, seconds=duration_ms / 1000)
        fields: dict[str, Any] = {"job_id": job_id, "step_id": step_id, "step_type": step_type, "success": success,
                                  "duration_ms": duration_ms, "cached": cached}
        if not success and error:
            fields.update(error_type=error.get("type"), error_category=error.get("category"),
                          retryable=error.get("retryable"))
        event(self.log, "step.finished", level=logging.INFO if success else logging.WARNING, **fields)

    @never_raises
    def upstream_call(self, *, job_id: str | None, service: str, operation: str, status: int | None,
                      duration_ms: int, cached: bool, error_type: str | None) -> None:
        outcome = upstream_outcome(status=status, cached=cached, error_type=error_type)
        self.metrics.upstream(service=service, operation=operation, outcome=outcome, seconds=duration_ms / 1000,
                              cached=cached)
        event(self.log, "upstream.call", level=logging.INFO if error_type else logging.DEBUG, job_id=job_id,
              service=service, operation=operation, status=status, outcome=outcome, duration_ms=duration_ms,
              cached=cached, error_type=error_type)
