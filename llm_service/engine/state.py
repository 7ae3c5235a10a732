"""What one workflow run accumulates: step records (the ``steps`` namespace), step entries, totals.

Step records keep the old layout so existing references keep working: ``steps.<id>.output`` is the result, keys
of a map result are copied up (``steps.<id>.data.results``, ``steps.<id>.content``), and ``outputs`` aliases name
the LLM content (or the whole result). New: a step that failed under ``continue`` (or was skipped by a
conditional) is recorded as ``{success: false, output: null, error: ...}``, and references into it resolve to null.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from .definitions import Step, Workflow
from .references import Scope



class RunState:
    def __init__(self, workflow: Workflow, input_data: Mapping[str, Any]) -> None:
        self.workflow = workflow
        self.input_data = input_data
        self.records: dict[str, dict] = {}
        self.entries: dict[str, dict] = {}
        self.order = {step.id: index for index, step in enumerate(workflow.walk())}
        self.llm_calls: list[dict] = []
        self.total_tokens = 0
        self.total_cost = 0.0
        self.warnings: list[str] = []
        self.finished = 0
        self.empty_steps: set[str] = set()
        self.scope = Scope(input_data, self.records, {}, empty_steps=self.empty_steps)
        self._lock = threading.Lock()

    def lookup(self, path: str) -> Any:
        return self.scope.lookup(path)

    def context_map(self) -> dict:
        """The whole context, as a transform without ``input`` sees it."""
        return {"input": self.input_data, "steps": self.records, "context": {}}

    # -- recording ----------------------------------------------------------------------------------------------

    def record_success(self, step: Step, result: Any, *, extra: Mapping[str, Any] | None = None) -> None:
        record: dict[str, Any] = {"output": result, "success": True}
        if isinstance(result, dict):
            for key, value in result.items():
                if key not in ("output", "success"):
                    record[key] = value
        for key, value in (extra or {}).items():
            record[key] = value
        for alias in step.outputs or ():
            if isinstance(result, dict) and "content" in result:
                record[alias] = result["content"]
            else:
                record[alias] = result
        with self._lock:
            self.records[step.id] = record
            self.empty_steps.discard(step.id)

    def record_no_output(self, step: Step, *, error: Mapping[str, Any] | None = None, skipped: bool = False) -> None:
        record: dict[str, Any] = {"output": None, "success": False}
        if error is not None:
            record["error"] = dict(error)
        if skipped:
            record["skipped"] = True
        with self._lock:
            self.records[step.id] = record
            self.empty_steps.add(step.id)

    def reuse(self, step: Step, record: Mapping[str, Any]) -> None:
        """Take a step's record from an earlier run as is (re-run from a later step)."""
        with self._lock:
            self.records[step.id] = dict(record)
            if record.get("success"):
                self.empty_steps.discard(step.id)
            else:
                self.empty_steps.add(step.id)

    def add_entry(self, step: Step, entry: dict, progress: Callable[[str, int, int, dict], None] | None) -> None:
        with self._lock:
            self.entries[step.id] = entry
            self.finished += 1
            finished = self.finished
        if progress is not None:
            progress(step.id, finished, len(self.order), entry)

    def add_llm_call(self, call: dict) -> None:
        with self._lock:
            self.llm_calls.append(call)
            self.total_tokens += int(call.get("total_tokens") or 0)
            self.total_cost += float(call.get("cost_usd") or 0.0)

    def spent_usd(self) -> float:
        with self._lock:
            return self.total_cost

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)

    # -- reading back -------------------------------------------------------------------------------------------

    def entries_in_order(self, upto: str | None = None) -> list[dict]:
        """Entries in definition order (so the result does not depend on the execution mode)."""
        limit = self.order[upto] if upto is not None else None
        ordered = sorted(self.entries.items(), key=lambda item: self.order[item[0]])
        return [entry for step_id, entry in ordered if limit is None or self.order[step_id] <= limit]

    def output_of(self, step_id: str) -> Any:
        record = self.records.get(step_id)
        return None if record is None else record.get("output")
