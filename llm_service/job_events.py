"""The events of a job's event stream (``GET /api/v1/jobs/<id>/events``): their names and the data they carry.

One place for their shape, so the worker's publisher (``tasks.runtime.ProgressBuffer``), the local run's progress
view (``llm-service run --progress``) and the docs agree. Terminal events (``job.<status>``) are written by the job
store's Lua ``terminate()``; the API adds the status endpoint's answer to them.
"""
from __future__ import annotations

from typing import Any, Mapping

STEP_STARTED, STEP_COMPLETED, LLM_TOKEN, JOB_REQUEUED = "step.started", "step.completed", "llm.token", "job.requeued"
TERMINAL = {"job.completed": "completed", "job.failed": "failed", "job.cancelled": "cancelled"}


def step_started(step_id: str, name: str, index: int, total: int) -> dict:
    return {"step_id": step_id, "name": name, "index": index, "total": total}


def step_completed(step_id: str, name: str, index: int | None, finished: int, total: int,
                   entry: Mapping[str, Any]) -> dict:
    """What a watcher shows for a finished step (never its output: that stays in the job's record)."""
    status = "skipped" if entry.get("skipped") else "completed" if entry.get("success", True) else "failed"
    return {"step_id": step_id, "name": name, "index": index, "total": total, "steps_completed": finished,
            "status": status, "duration_ms": entry.get("duration_ms"), "cached": bool(entry.get("cached"))}


def llm_token(step_id: str, delta: str) -> dict:
    return {"step_id": step_id, "delta": delta}


class EventRecorder:
    """A run listener that turns what the engine reports into ``(name, data)`` events for ``emit``; the worker's
    buffer and the CLI's progress view both build their events through it."""

    def __init__(self) -> None:
        self.titles: dict[str, str] = {}
        self.positions: dict[str, int] = {}

    def started(self, step_id: str, position: int, total: int, name: str) -> tuple[str, dict]:
        self.titles[step_id], self.positions[step_id] = name, position
        return STEP_STARTED, step_started(step_id, name, position, total)

    def finished(self, step_id: str, finished: int, total: int, entry: Mapping[str, Any]) -> tuple[str, dict]:
        return STEP_COMPLETED, step_completed(step_id, self.titles.get(step_id, step_id),
                                              self.positions.get(step_id), finished, total, entry)
