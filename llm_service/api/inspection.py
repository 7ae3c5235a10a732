"""What the validate and list endpoints know about a workflow: does it load, does it pass the static checks, and
the old placeholder estimates (1000 tokens, $0.015 and 5 s per step)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..engine import (
    Engine,
    Workflow,
    WorkflowInvalid,
    WorkflowLoadError,
    WorkflowNotFound,
)
from ..engine.validation import check_workflow

TOKENS_PER_STEP = 1000
COST_PER_TOKEN_USD = 0.000015
SECONDS_PER_STEP = 5


def load_error_message(exc: WorkflowLoadError) -> str:
    return f"Failed to load workflow: {exc}"


@dataclass
class Inspection:
    name: str
    workflow: Workflow | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.workflow is not None and not self.errors

    @property
    def steps(self) -> int | None:
        return self.workflow.total_steps() if self.workflow is not None else None

    def estimates(self) -> dict[str, Any]:
        steps = self.steps
        if steps is None:
            return {"estimated_tokens": None, "estimated_cost_usd": None, "estimated_duration_seconds": None}
        tokens = steps * TOKENS_PER_STEP
        return {"estimated_tokens": tokens, "estimated_cost_usd": round(tokens * COST_PER_TOKEN_USD, 4),
                "estimated_duration_seconds": steps * SECONDS_PER_STEP}


def inspect_workflow(engine: Engine, name: str, *, max_steps: int,
                     input_data: Mapping[str, Any] | None = None) -> Inspection:
    """Load ``name`` and run the static checks. Loading problems become ``errors`` (the same texts the submit
    endpoint answers with, or one line per definition problem); nothing raises for a bad definition."""
    inspection = Inspection(name)
    try:
        workflow = engine.load(name)
    except WorkflowNotFound as exc:
        inspection.errors.append(str(exc))
        return inspection
    except WorkflowInvalid as exc:
        inspection.errors.extend(exc.problems or [str(exc)])
        return inspection
    except WorkflowLoadError as exc:
        inspection.errors.append(load_error_message(exc))
        return inspection
    inspection.workflow = workflow
    tools = engine.tools
    report = check_workflow(workflow, prompts=engine.prompts, services=tools.services, providers=tools.providers,
                            max_steps=max_steps)
    inspection.errors.extend(report.problems)
    inspection.warnings.extend(report.warnings)
    if input_data is not None:
        for declared in workflow.inputs or ():
            if declared.get("required") and declared["name"] not in input_data:
                inspection.warnings.append(f"input '{declared['name']}' is declared required but was not given")
    return inspection
