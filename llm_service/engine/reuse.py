"""Re-running a workflow from a step: which records of an earlier run may stand in for steps, and whether they still
match the definition.

A run can be given ``completed_steps`` (step id -> the step's full record as ``steps.<id>`` held it in the earlier
run, LLM usage included): those steps are not executed again, their records are reused as they are, and the result
marks them ``reused``. Reusing an output is only sound while the step that produced it is defined the same way, so
every job keeps a fingerprint of each step's definition; the selection here refuses, with a message saying what to
do, when a step to reuse has no record or was defined differently.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Mapping

from .definitions import Step, Workflow, walk_steps
from .errors import PromptError
from .prompts import PromptLoader


class RerunRefused(ValueError):
    """The earlier run cannot be reused from that step. ``reason``: ``unknown_step``, ``not_recorded`` or
    ``definition_changed``."""

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


def step_fingerprints(workflow: Workflow, prompts: PromptLoader | None = None) -> dict[str, str]:
    """A short hash of each step's own definition (type, config with any inner steps, error handling, aliases) and,
    given the loader, of the prompt files it uses (with their includes), so editing a prompt counts as a change."""
    return {step.id: _fingerprint(step, prompts) for step in workflow.walk()}


def definition_hash(fingerprints: Mapping[str, str]) -> str:
    """One hash of the whole definition, from the steps' fingerprints in order."""
    return hashlib.sha256(json.dumps(list(fingerprints.items())).encode("utf-8")).hexdigest()[:16]


def _fingerprint(step: Step, prompts: PromptLoader | None) -> str:
    definition = {"id": step.id, "type": step.type, "config": step.config, "error_mode": step.error_mode,
                  "outputs": step.outputs, "output_var": step.output_var, "retry": asdict(step.retry)}
    if prompts is not None:
        definition["prompt_files"] = {name: _prompt_text(prompts, name)
                                       for name in step.kind.prompt_files(step.settings)}
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _prompt_text(prompts: PromptLoader, name: str) -> str:
    try:
        return prompts.load(name)
    except PromptError as exc:  # a missing prompt fails the step when it runs; here it is just another text
        return f"<unreadable: {exc}>"


def first_unfinished_step(workflow: Workflow, records: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Where an earlier run stopped: the first step, in definition order, without a record of success (a step
    skipped by a conditional counts as finished). None when every step succeeded."""
    for step in workflow.walk():
        record = records.get(step.id)
        if record is None or not (record.get("success") or record.get("skipped")):
            return step.id
    return None


def records_to_reuse(workflow: Workflow, from_step: str, records: Mapping[str, Mapping[str, Any]],
                     recorded_fingerprints: Mapping[str, str],
                     prompts: PromptLoader | None = None) -> dict[str, dict]:
    """The records of every step before ``from_step`` (definition order; not the steps that contain it, which
    run again around it), checked against the fingerprints kept with the earlier run (computed with the same
    ``prompts`` loader, or none)."""
    order = [step.id for step in workflow.walk()]
    if from_step not in order:
        raise RerunRefused("unknown_step", f"Step '{from_step}' is not a step of workflow '{workflow.name}' "
                           f"(steps: {', '.join(order)})", from_step=from_step)
    ancestors = _ancestors(workflow.steps, from_step)
    before = [step_id for step_id in order[:order.index(from_step)] if step_id not in ancestors]
    missing = [step_id for step_id in before if step_id not in records]
    if missing:
        raise RerunRefused("not_recorded", f"The outputs of step(s) {', '.join(missing)} were not recorded by the "
                           f"earlier run, so the workflow cannot be re-run from '{from_step}'; re-run it from an "
                           "earlier step or submit it again.", missing_steps=missing)
    current = step_fingerprints(workflow, prompts)
    changed = [step_id for step_id in before if recorded_fingerprints.get(step_id) != current[step_id]]
    if changed:
        raise RerunRefused("definition_changed", f"The definition of step(s) {', '.join(changed)} changed since the "
                           f"earlier run, so their recorded outputs no longer match; re-run from '{changed[0]}' (or "
                           "earlier) or submit the workflow again.", changed_steps=changed)
    return {step_id: dict(records[step_id]) for step_id in before}


def _ancestors(steps: list[Step], target: str) -> set[str]:
    for step in steps:
        if step.id == target:
            return set()
        if any(inner.id == target for inner in walk_steps(step.children)):
            return {step.id} | _ancestors(step.children, target)
    return set()
