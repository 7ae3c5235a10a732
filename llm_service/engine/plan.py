"""The static plan of a workflow: what runs in which order, what each step reads and makes available, how many
upstream calls it may make and what its LLM steps may cost. No upstream request, no Redis.

One home for this analysis: ``llm-service dry-run`` prints it, ``llm-service diagram`` and
``GET /api/v1/workflows/<name>`` draw it (:mod:`.diagram`). References and dependency order come from
:mod:`.scheduling`, the same code that orders a ``dependencies`` run.

With input data, each step's parameters and each LLM step's messages are rendered: LLM messages by running the
real LLM step executor against a provider stand-in that captures the request instead of sending it, so the dry-run
shows exactly what would be sent. References to other steps' results cannot be known before the run and stay as
``${steps...}``. Values of secret-named input fields and configured secrets are redacted from everything shown.

Estimates: prompt tokens are counted from the rendered messages (or the templates with references unfilled) at
one token per four characters (:func:`.pricing.estimate_tokens`); output tokens are the step's ``max_tokens``
(after ``LLM_MAX_TOKENS_CAP``), an upper bound; prices come from :data:`.pricing.PRICES_PER_MILLION`. The
``max_cost_usd`` adds every format retry (each resends the conversation with the previous answer) at the dearest
priced candidate model, times the step's retries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ..redaction import is_secret_key, redact_text, sanitize, scrub_values
from .deadline import Deadline
from .definitions import Step, Workflow
from .errors import ReferenceError_, WorkflowError
from .ports import (
    ChatRequest,
    NeverCancelled,
    NullCache,
    NullObserver,
    NullRateLimiter,
    ProviderRegistry,
    SystemClock,
)
from .prompts import PromptLoader
from .references import Resolver, Scope, is_namespace_path, referenced_step, split_path
from .scheduling import reads_whole_context, step_references, waves


@dataclass
class StepPlan:
    step: Step
    summary: str                      # model, service.operation, transform operation or condition
    error_mode: str
    references: list[str]             # ${...} paths of input/steps/context the step's own config reads
    needs: list[str]                  # the steps whose results it reads
    reads_all_earlier: bool           # a transform without input/source sees the whole context
    provides: list[str]               # what later steps can reference
    branch: str | None = None         # "then"/"else" under a conditional, "parallel" under a parallel
    children: list["StepPlan"] = field(default_factory=list)
    rendered: dict | None = None      # resolved parameters / rendered messages (with input)
    estimate: dict | None = None      # LLM steps: tokens and cost
    problems: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        """How many times the runner may run the step: once, or 1 + retry_count under ``retry``."""
        return 1 + self.step.retry.retry_count if self.error_mode == "retry" else 1

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "id": self.step.id, "type": self.step.type, "summary": self.summary, "error_mode": self.error_mode,
            "references": self.references, "needs": self.needs, "reads_all_earlier": self.reads_all_earlier,
            "provides": self.provides, "branch": self.branch}
        for key in ("rendered", "estimate"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.problems:
            data["problems"] = self.problems
        data["children"] = [child.to_dict() for child in self.children]
        return data


@dataclass
class Plan:
    workflow: Workflow
    execution: str
    steps: list[StepPlan]
    waves: list[list[str]] | None
    upstream_calls: dict[str, dict[str, int]]
    totals: dict
    input_given: bool
    unresolved_inputs: list[str]

    def walk(self) -> Iterator[StepPlan]:
        """Every step plan in execution (definition) order, children right after their parent."""
        def visit(plans: list[StepPlan]) -> Iterator[StepPlan]:
            for plan in plans:
                yield plan
                yield from visit(plan.children)
        return visit(self.steps)

    def to_dict(self) -> dict:
        workflow = self.workflow
        return {
            "workflow": {"name": workflow.name, "version": workflow.version, "description": workflow.description,
                         "execution": self.execution, "timeout_seconds": workflow.timeout_seconds,
                         "default_error_mode": workflow.default_error_mode, "total_steps": workflow.total_steps()},
            "inputs": input_variables(workflow),
            "steps": [plan.to_dict() for plan in self.steps],
            "waves": self.waves,
            "upstream_calls": self.upstream_calls,
            "llm_estimates": [{"step_id": p.step.id, **p.estimate} for p in self.walk() if p.estimate is not None],
            "totals": self.totals,
            "input_given": self.input_given,
            "unresolved_inputs": self.unresolved_inputs,
        }


def input_variables(workflow: Workflow) -> list[dict]:
    """The declared inputs, plus any ``${input.X}`` a step reads that the definition does not declare."""
    declared = [{"name": item["name"], "type": item.get("type", "string"), "required": item.get("required", True),
                 "default": item.get("default"), "description": item.get("description"), "declared": True}
                for item in workflow.inputs or ()]
    known = {item["name"] for item in declared}
    for step in workflow.walk():
        for path in step_references(step):
            try:
                namespace, segments = split_path(path)
            except ValueError:
                continue
            name = str(segments[0]) if segments else ""
            if namespace.strip() == "input" and name and name not in known:
                known.add(name)
                declared.append({"name": name, "type": None, "required": None, "default": None,
                                 "description": None, "declared": False})
    return declared


def build_plan(workflow: Workflow, *, prompts: PromptLoader | None = None,
               providers: ProviderRegistry | None = None, input_data: Mapping[str, Any] | None = None,
               execution: str | None = None, max_tokens_cap: int | None = None) -> Plan:
    """The plan; with ``prompts`` also the rendering and LLM estimates (``input_data`` fills references)."""
    mode = execution or workflow.execution or "sequential"
    scope = _DryScope(workflow, input_data)
    builder = PlanBuilder(workflow, scope, prompts, providers, max_tokens_cap)
    steps = [builder.plan(step, None) for step in workflow.steps]
    plan = Plan(workflow=workflow, execution=mode, steps=steps,
                waves=waves(workflow.steps) if mode == "dependencies" else None,
                upstream_calls=builder.calls, totals={}, input_given=input_data is not None,
                unresolved_inputs=sorted(set(scope.unresolved)))
    plan.totals = _totals(plan)
    return plan


def step_summary(step: Step) -> str:
    return step.kind.summary(step.settings)


def provides(step: Step) -> list[str]:
    """The references a later step can use to read this step's result."""
    names = ["output", "success", *step.kind.provides(step.settings), *(step.outputs or ())]
    return [f"steps.{step.id}.{name}" for name in dict.fromkeys(names)]


class _DryScope:
    """Reference lookups for a dry run: input values when given, ``${...}`` kept for everything else."""

    def __init__(self, workflow: Workflow, input_data: Mapping[str, Any] | None) -> None:
        self.given = input_data is not None
        data = workflow.with_input_defaults(dict(input_data or {}))
        self.scope = Scope(data, {}, {})
        self.unresolved: list[str] = []
        self.secrets = tuple(_secret_values(data))

    def lookup(self, path: str) -> Any:
        if not self.given or referenced_step(path) is not None:
            return "${" + path + "}"
        try:
            return self.scope.lookup(path)
        except ReferenceError_:
            self.unresolved.append(path)
            return "${" + path + "}"

    def spent_usd(self) -> float:
        return 0.0

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, self.secrets)
        return scrub_values(sanitize(value, truncate=False), self.secrets)


class _Captured(BaseException):
    """Raised by the capturing provider: a BaseException so no error handling on the way treats it as a failure."""

    def __init__(self, request: ChatRequest) -> None:
        super().__init__("captured")
        self.request = request


class _CapturingProvider:
    def __init__(self, name: str) -> None:
        self.name = name

    def complete(self, request: ChatRequest, **_: Any) -> Any:
        raise _Captured(request)


class _CapturingProviders:
    """The provider registry for a dry run: the configured providers' names, none of their sending."""

    def __init__(self, real: ProviderRegistry | None) -> None:
        self.real = real
        self.default = real.default if real is not None else "llm"  # no registry: the default provider

    def get(self, name: str | None) -> _CapturingProvider:
        return _CapturingProvider(self.real.get(name).name if self.real is not None else (name or self.default))

    def names(self) -> list[str]:
        return self.real.names() if self.real is not None else [self.default]


class PlanBuilder:
    """Plans steps one by one; each step type's ``dry_run`` fills in its rendering and estimates through
    ``scope`` (input values, redaction), ``providers`` (names only), :meth:`resolve`, :meth:`count` and
    :meth:`capture`."""

    def __init__(self, workflow: Workflow, scope: _DryScope, prompts: PromptLoader | None,
                 providers: ProviderRegistry | None, max_tokens_cap: int | None) -> None:
        self.workflow = workflow
        self.scope = scope
        self.prompts = prompts
        self.providers = _CapturingProviders(providers)
        self.max_tokens_cap = max_tokens_cap
        self.calls: dict[str, dict[str, int]] = {}

    def plan(self, step: Step, branch: str | None) -> StepPlan:
        references = [path for path in step_references(step) if is_namespace_path(path)]
        needs = [t for t in dict.fromkeys(referenced_step(p) for p in references) if t]
        whole = reads_whole_context(step) or any(referenced_step(p) == "" for p in references)
        plan = StepPlan(step=step, summary=step_summary(step), error_mode=self.workflow.error_mode_of(step),
                        references=references, needs=needs, reads_all_earlier=whole, provides=provides(step),
                        branch=branch)
        kind = step.kind
        plan.children = [self.plan(child, nesting.branch)
                         for nesting, children in kind.branches(step.settings) for child in children]
        if kind.dry_run is not None:
            kind.dry_run(self, plan)
        return plan

    def resolve(self, value: Any, plan: StepPlan) -> Any:
        """``value`` with the references a dry run can fill filled; a problem is noted on the plan."""
        resolver = Resolver(self.scope.lookup)
        try:
            return resolver.resolve(value)
        except WorkflowError as exc:
            plan.problems.append(str(exc))
            return value

    def count(self, service: str, calls: int, most: int, plan: StepPlan) -> None:
        """The step calls ``service`` ``calls`` times, at most ``most`` times per attempt."""
        most *= plan.attempts
        entry = self.calls.setdefault(service, {"calls": 0, "max_calls": 0})
        entry["calls"] += calls
        entry["max_calls"] += most

    def capture(self, plan: StepPlan) -> ChatRequest | None:
        """The chat request the step's executor would send, captured instead of sent (None: it could not be
        built, and the plan says why). Needs the prompt loader (``self.prompts``)."""
        from .steps.base import Collaborators, EngineLimits, StepRun

        limits = EngineLimits(llm_max_tokens_cap=self.max_tokens_cap or EngineLimits.llm_max_tokens_cap)
        tools = Collaborators(services=None, providers=self.providers, cache=NullCache(),  # type: ignore[arg-type]
                              limiter=NullRateLimiter(), prompts=self.prompts, clock=SystemClock(),
                              observer=NullObserver(), limits=limits)
        run = StepRun(step=plan.step, state=self.scope, tools=tools,  # type: ignore[arg-type]
                      deadline=Deadline(SystemClock(), 3600.0), cancel=NeverCancelled(), mode=plan.error_mode,
                      run=None)  # type: ignore[arg-type]
        try:
            plan.step.kind.execute(run)
        except _Captured as captured:
            plan.problems.extend(run.warnings)
            return captured.request
        except Exception as exc:  # a prompt or provider problem of this step: report it, plan the rest
            plan.problems.append(f"cannot render the prompt: {exc}")
            return None
        raise AssertionError("the step returned without calling its provider")  # pragma: no cover


def _totals(plan: Plan) -> dict:
    estimates = [p.estimate for p in plan.walk() if p.estimate is not None]
    return {
        "llm_steps": sum(1 for p in plan.walk() if p.step.type == "llm"),
        "prompt_tokens": sum(e["prompt_tokens"] for e in estimates),
        "output_tokens": sum(e["output_tokens"] for e in estimates),
        "cost_usd": round(sum(e["cost_usd"] or 0.0 for e in estimates), 6),
        "max_cost_usd": round(sum(e["max_cost_usd"] or 0.0 for e in estimates), 6),
        "unpriced_models": sorted({e["model"] for e in estimates if not e["priced"]}),
    }


def _secret_values(value: Any, inside_secret: bool = False) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_values(item, inside_secret or is_secret_key(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secret_values(item, inside_secret)
    elif inside_secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield str(value)
