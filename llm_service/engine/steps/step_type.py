"""What a step type is: one :class:`StepType` per ``steps/<type>.py`` module, found by the registry in
:mod:`.` (the package ``__init__``).

Everything else asks the descriptor instead of switching on ``step.type``: the loader (its config schema and
where its children sit), the runner and re-runs (its executor, what a re-used record shows, the prompt files
it reads), scheduling (which config keys hold children rather than references, whether it reads the whole
context), ``validate`` (the references it makes, its own checks, the fields its output is known to have), the plan
and the diagram (summary, what it provides, its dry-run rendering, its shape).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from marshmallow import Schema

from .base import Executor

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Step
    from ..plan import PlanBuilder, StepPlan
    from ..validation import CheckContext, Report


@dataclass(frozen=True)
class Nesting:
    """One list of child steps a step type holds: under ``config[key]``, as ``settings.<attribute>``, shown
    in plans as ``branch`` (e.g. the ``then`` steps of a conditional)."""
    key: str
    attribute: str
    branch: str


def _no_references(step: "Step") -> Iterable[tuple[str, bool]]:
    return ()


def _never(step: "Step") -> bool:
    return False


def _record_output(record: Mapping[str, Any]) -> Any:
    return record.get("output")


@dataclass(frozen=True)
class StepType:
    name: str
    order: int
    """Where the type appears in lists (the 'Allowed:' message, the docs): the original five keep their order."""
    schema: type[Schema]
    """Loads ``step.config`` into the settings object the executor reads (``step.settings``)."""
    execute: Executor
    summary: Callable[[Any], str]
    """One line for plans and diagrams, from the settings: model, service.operation, transform, condition..."""
    nests: tuple[Nesting, ...] = ()
    concurrent: bool = False
    """Its children run at the same time (so they must not reference each other)."""
    references: Callable[["Step"], Iterable[tuple[str, bool]]] = _no_references
    """``(path, strict)`` for each ``${...}`` the step's settings read, for ``validate``; a strict reference must
    use a namespace, a lenient one may be a template variable."""
    reads_whole_context: Callable[["Step"], bool] = _never
    """True when the step reads every earlier result (so a ``dependencies`` run waits for all of them)."""
    check: Callable[["Report", "Step", "CheckContext"], None] | None = None
    """Type-specific ``validate`` checks beyond references (prompt files, providers, service parameters...)."""
    prompt_files: Callable[[Any], list[str]] = lambda settings: []
    """The prompt files the step reads (so a re-run sees an edited prompt as a changed step)."""
    output_fields: Callable[[Any], set[str] | None] = lambda settings: None
    """The top-level fields the step's output can have, when its settings close the set (structured output)."""
    provides: Callable[[Any], list[str]] = lambda settings: []
    """What a later step can read besides ``output`` and ``success``: ``steps.<id>.<name>`` for each name."""
    dry_run: Callable[["PlanBuilder", "StepPlan"], None] | None = None
    """Fills in a step plan's rendering and estimates for a dry run (no upstream request)."""
    entry_output: Callable[[Mapping[str, Any]], Any] = _record_output
    """What the step's entry in ``steps_executed`` shows for a record kept from an earlier run."""
    mermaid_shape: tuple[str, str] = ("[", "]")
    dot_shape: str = "box"

    def branches(self, settings: Any) -> list[tuple[Nesting, list["Step"]]]:
        return [(nesting, getattr(settings, nesting.attribute)) for nesting in self.nests]

    def children(self, settings: Any) -> list["Step"]:
        if not self.nests:
            return []
        return [child for nesting in self.nests for child in getattr(settings, nesting.attribute)]
