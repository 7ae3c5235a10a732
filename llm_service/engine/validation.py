"""Static checks of a loaded workflow, beyond its schema: what ``llm-service validate`` and the API's validate
endpoint report. Every problem is one line naming the file, the step and what to fix.

Loading already rejects schema errors, duplicate ids and unknown step types, services, operations and transforms;
this adds references (unknown namespaces, steps that do not exist or have not run yet), prompt files and
includes, LLM providers, required service parameters and the step cap, and for LLM steps the models' prices, a
``max_format_retries`` without ``response_format``, and references to fields a structured output cannot have.
"""
from __future__ import annotations

from typing import Iterable

from .definitions import (
    ConditionalSettings,
    ExternalAPISettings,
    LLMSettings,
    ParallelSettings,
    Step,
    TransformSettings,
    Workflow,
)
from .expressions import parse as parse_expression
from .ports import ProviderRegistry, ServiceRegistry
from .prompts import INCLUDE, PromptLoader
from .pricing import get_pricing
from .references import NAMESPACES, PLACEHOLDER, find_references, split_path
from .structured_output import schema_of


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
    for step in steps:
        for path, strict in _references(step):
            _check_reference(report, step, path, strict, order, relations)
            _check_structured_field(report, step, path, fields)
        settings = step.settings
        if isinstance(settings, LLMSettings):
            _check_llm(report, step, settings, prompts, providers)
            _check_llm_output(report, step, settings)
        elif isinstance(settings, ExternalAPISettings):
            _check_parameters(report, step, settings, services)
    if workflow.has_outputs:
        for path in find_references(workflow.outputs):
            namespace = _namespace(path)
            if namespace not in NAMESPACES:
                report.problem(None, f"outputs: ${{{path}}} uses unknown namespace '{namespace}'; "
                                     f"use one of {', '.join(NAMESPACES)}")
            elif namespace == "steps":
                target = _step_target(path)
                if target and target not in order:
                    report.problem(None, f"outputs: ${{{path}}} references step '{target}' which does not exist")
    return report


def _references(step: Step) -> Iterable[tuple[str, bool]]:
    """(path, strict): strict references must use a namespace; lenient ones may be template variables."""
    settings = step.settings
    if isinstance(settings, LLMSettings):
        for path in find_references(settings.variables):
            yield path, True
        if settings.user_message:
            for path in find_references(settings.user_message):
                if _namespace(path) in NAMESPACES:
                    yield path, True
    elif isinstance(settings, ExternalAPISettings):
        for path in find_references(settings.parameters):
            yield path, True
    elif isinstance(settings, TransformSettings):
        if settings.input:
            text = settings.input.strip()
            path = text[2:-1] if text.startswith("${") and text.endswith("}") else text
            yield path, True
        for path in find_references(settings.params):
            yield path, False
    elif isinstance(settings, ConditionalSettings):
        for path in parse_expression(settings.condition).references():
            yield path, True


def _namespace(path: str) -> str:
    try:
        return split_path(path)[0].strip()
    except ValueError:
        return ""


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


def _check_llm(report: Report, step: Step, settings: LLMSettings, prompts: PromptLoader,
               providers: ProviderRegistry | None) -> None:
    for template in (settings.prompt_template, settings.system_prompt_template):
        if not template:
            continue
        problems = prompts.problems(template)
        for message in problems:
            report.problem(step, message)
        if not problems:
            text = prompts.load(template)
            for match in PLACEHOLDER.finditer(text):
                name = _namespace(match.group(1)) or match.group(1)
                if name not in settings.variables:
                    report.warning(step, f"prompt {template} uses {match.group(0)} but the step defines no "
                                         f"variable '{name}' (it will be left as is)")
            for include in INCLUDE.finditer(text):  # pragma: no cover - expansion already replaced them
                report.problem(step, f"unexpanded include {include.group(0)}")
    if providers is not None and settings.provider and settings.provider not in providers.names():
        report.problem(step, f"unknown LLM provider '{settings.provider}'; configured: "
                             f"{', '.join(providers.names())}")
    elif providers is not None and settings.stream and not callable(
            getattr(providers.get(settings.provider), "stream", None)):
        report.warning(step, f"LLM provider '{settings.provider or providers.default}' cannot stream; "
                             "\"stream\": true is ignored (the answer arrives whole)")


def _check_llm_output(report: Report, step: Step, settings: LLMSettings) -> None:
    for model in settings.candidate_models:
        if get_pricing(model) is None:
            report.warning(step, f"model '{model}' is not in the price table: its cost is counted only when the "
                                 "provider reports it")
    listed = [m for m in (step.config.get("model"), *settings.models) if m]
    if len(listed) != len(set(listed)):
        report.warning(step, "'models' lists a model more than once; each is tried once")
    if "max_format_retries" in step.config and not settings.response_format:
        report.warning(step, "max_format_retries has no effect without response_format")


def _structured_fields(steps: list[Step]) -> dict[str, set[str]]:
    """Step id -> the top-level fields its structured output can have (only when the schema closes the set)."""
    fields: dict[str, set[str]] = {}
    for step in steps:
        schema = schema_of(step.settings.response_format) if isinstance(step.settings, LLMSettings) else None
        if schema and isinstance(schema.get("properties"), dict) and schema.get("additionalProperties") is False:
            fields[step.id] = set(schema["properties"])
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


def _check_parameters(report: Report, step: Step, settings: ExternalAPISettings, services: ServiceRegistry) -> None:
    try:
        spec = services.get(settings.service).operations.get(settings.operation)
    except Exception:  # unknown service: already reported by the schema
        return
    if spec is None:
        return
    given = set(settings.parameters)
    missing = [name for name in spec.required if name not in given]
    if missing:
        report.problem(step, f"{settings.service}.{settings.operation} needs parameter(s) {', '.join(missing)}")
    if spec.alternatives and not any(set(group) <= given for group in spec.alternatives):
        options = " or ".join("+".join(group) for group in spec.alternatives)
        report.problem(step, f"{settings.service}.{settings.operation} needs {options}")
    known = set(spec.required) | set(spec.optional) | {name for group in spec.alternatives for name in group}
    for name in sorted(given - known):
        report.warning(step, f"parameter '{name}' is not used by {settings.service}.{settings.operation}")


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
            if isinstance(ancestor.settings, ParallelSettings):
                return ancestor.id
        return None

    def concurrent(self, a: str, b: str) -> bool:
        """True when a and b sit in different children of the same parallel step."""
        for ancestor in self.ancestors(a):
            if isinstance(ancestor.settings, ParallelSettings) and self.is_descendant(b, ancestor.id):
                return self._child_of_parallel(a, ancestor) != self._child_of_parallel(b, ancestor)
        return False

    def _child_of_parallel(self, step_id: str, parallel: Step) -> str:
        current = step_id
        while self.parent.get(current) is not None and self.parent[current].id != parallel.id:
            current = self.parent[current].id
        return current
