"""Static checks of a loaded workflow, beyond its schema: what ``llm-service validate`` and the API's validate
endpoint report. Every problem is one line naming the file, the step and what to fix.

Loading already rejects schema errors, duplicate ids and unknown step types, services, operations and transforms;
this adds references (unknown namespaces, steps that do not exist or have not run yet), prompt files and
includes, LLM providers, required service parameters and the step cap, and for LLM steps the models' prices, a
``max_format_retries`` without ``response_format``, and references to fields a structured output cannot have.
"""
from __future__ import annotations

from dataclasses import dataclass

from .definitions import Step, Workflow
from .ports import ProviderRegistry, ServiceRegistry
from .prompts import PromptLoader
from .references import NAMESPACES, find_references, namespace_of, split_path


@dataclass(frozen=True)
class CheckContext:
    """What a step type's own checks may consult (``StepType.check``)."""
    prompts: PromptLoader
    services: ServiceRegistry
    providers: ProviderRegistry | None


class Report:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def problem(self, step: Step | None, message: str) -> None:
        self.problems.append(self._line(step, message))

    def warning(self, step: Step | None, message: str) -> None:
        self.warnings.append(self._line(step, message))

    def _line(self, step: Step | None, message: str) -> str:
        where = f"step '{step.id}' ({step.location})" if step is not None else "workflow"
        return f"{self.source}: {where}: {message}"


def check_workflow(workflow: Workflow, *, prompts: PromptLoader, services: ServiceRegistry,
                   providers: ProviderRegistry | None = None, max_steps: int | None = None) -> Report:
    report = Report(workflow.source or workflow.name)
    steps = list(workflow.walk())
    if max_steps is not None and len(steps) > max_steps:
        report.problem(None, f"{len(steps)} steps exceed the limit of {max_steps} (WORKFLOW_MAX_STEPS)")
    order = {step.id: index for index, step in enumerate(steps)}
    relations = _Relations(workflow.steps)
    fields = _structured_fields(steps)
    context = CheckContext(prompts=prompts, services=services, providers=providers)
    for step in steps:
        kind = step.kind
        for path, strict in kind.references(step):
            _check_reference(report, step, path, strict, order, relations)
            _check_structured_field(report, step, path, fields)
        if kind.check is not None:
            kind.check(report, step, context)
    if workflow.has_outputs:
        for path in find_references(workflow.outputs):
            namespace = namespace_of(path)
            if namespace not in NAMESPACES:
                report.problem(None, f"outputs: ${{{path}}} uses unknown namespace '{namespace}'; "
                                     f"use one of {', '.join(NAMESPACES)}")
            elif namespace == "steps":
                target = _step_target(path)
                if target and target not in order:
                    report.problem(None, f"outputs: ${{{path}}} references step '{target}' which does not exist")
    return report


def _step_target(path: str) -> str | None:
    try:
        namespace, segments = split_path(path)
    except ValueError:
        return None
    return str(segments[0]) if namespace.strip() == "steps" and segments else None


def _check_reference(report: Report, step: Step, path: str, strict: bool, order: dict[str, int],
                     relations: "_Relations") -> None:
    try:
        namespace, _ = split_path(path)
    except ValueError as exc:
        report.problem(step, f"${{{path}}}: {exc}")
        return
    namespace = namespace.strip()
    if namespace not in NAMESPACES:
        if strict:
            report.problem(step, f"${{{path}}} uses unknown namespace '{namespace}'; "
                                 f"use one of {', '.join(NAMESPACES)}")
        return
    target = _step_target(path)
    if namespace != "steps" or target is None:
        return
    if target not in order:
        report.problem(step, f"${{{path}}} references step '{target}' which does not exist")
    elif target == step.id or relations.is_descendant(target, step.id) or order[target] > order[step.id]:
        report.problem(step, f"${{{path}}} references step '{target}' which runs later")
    elif relations.concurrent(target, step.id):
        report.problem(step, f"${{{path}}} references step '{target}' which runs at the same time "
                             f"(both are children of parallel step '{relations.parallel_parent(target)}')")


def _structured_fields(steps: list[Step]) -> dict[str, set[str]]:
    """Step id -> the top-level fields its structured output can have (only when the schema closes the set)."""
    fields: dict[str, set[str]] = {}
    for step in steps:
        names = step.kind.output_fields(step.settings)
        if names is not None:
            fields[step.id] = names
    return fields


def _check_structured_field(report: Report, step: Step, path: str, fields: dict[str, set[str]]) -> None:
    try:
        namespace, segments = split_path(path)
    except ValueError:
        return
    if namespace.strip() != "steps" or len(segments) < 3 or str(segments[1]) != "output":
        return
    target, name = str(segments[0]), str(segments[2])
    if target in fields and name not in fields[target]:
        report.problem(step, f"${{{path}}}: the structured output of step '{target}' has no field '{name}' "
                             f"(its schema allows: {', '.join(sorted(fields[target]))})")


class _Relations:
    """Parent/child structure of nested steps, to tell 'runs later' and 'runs at the same time' apart."""

    def __init__(self, steps: list[Step]) -> None:
        self.parent: dict[str, Step | None] = {}

        def visit(children: list[Step], parent: Step | None) -> None:
            for child in children:
                self.parent[child.id] = parent
                visit(child.children, child)
        visit(steps, None)

    def ancestors(self, step_id: str) -> list[Step]:
        chain, parent = [], self.parent.get(step_id)
        while parent is not None:
            chain.append(parent)
            parent = self.parent.get(parent.id)
        return chain

    def is_descendant(self, step_id: str, ancestor_id: str) -> bool:
        return any(a.id == ancestor_id for a in self.ancestors(step_id))

    def parallel_parent(self, step_id: str) -> str | None:
        for ancestor in self.ancestors(step_id):
            if ancestor.kind.concurrent:
                return ancestor.id
        return None

    def concurrent(self, a: str, b: str) -> bool:
        """True when a and b sit in different children of the same parallel step."""
        for ancestor in self.ancestors(a):
            if ancestor.kind.concurrent and self.is_descendant(b, ancestor.id):
                return self._child_of_parallel(a, ancestor) != self._child_of_parallel(b, ancestor)
        return False

    def _child_of_parallel(self, step_id: str, parallel: Step) -> str:
        current = step_id
        while self.parent.get(current) is not None and self.parent[current].id != parallel.id:
            current = self.parent[current].id
        return current
