"""Which steps a step needs, read from its ``${steps...}`` references.

Used two ways: ``"execution": "dependencies"`` starts each top-level step as soon as the steps it references have
finished, and ``validate`` reports references to steps that do not exist or run later. A transform with neither
``input`` nor ``source`` receives the whole context, so it conservatively waits for every earlier step.
"""
from __future__ import annotations

from typing import Iterable

from .definitions import Step, walk_steps
from .references import find_references, referenced_step


def step_references(step: Step) -> list[str]:
    """The ``${...}`` paths a step's own configuration uses (children are separate steps)."""
    child_keys = {nesting.key for nesting in step.kind.nests}
    config = {k: v for k, v in step.config.items() if k not in child_keys} if child_keys else step.config
    return list(find_references(config))


def reads_whole_context(step: Step) -> bool:
    return step.kind.reads_whole_context(step)


def dependencies(steps: list[Step]) -> dict[str, set[str]]:
    """For each top-level step, the earlier top-level steps it must wait for."""
    owner = {inner.id: top.id for top in steps for inner in walk_steps([top])}
    result: dict[str, set[str]] = {}
    for index, top in enumerate(steps):
        earlier = [s.id for s in steps[:index]]
        needs: set[str] = set()
        for inner in walk_steps([top]):
            if reads_whole_context(inner):
                needs.update(earlier)
            for target in _targets(step_references(inner)):
                if target == "":
                    needs.update(earlier)
                elif owner.get(target) in earlier:
                    needs.add(owner[target])
        result[top.id] = needs
    return result


def _targets(paths: Iterable[str]) -> Iterable[str]:
    for path in paths:
        target = referenced_step(path)
        if target is not None:
            yield target


def waves(steps: list[Step]) -> list[list[str]]:
    """Top-level steps grouped by when ``"execution": "dependencies"`` can start them: each wave needs only
    steps of earlier waves, so the steps of one wave can run together (width permitting)."""
    needs = dependencies(steps)
    level: dict[str, int] = {}
    for step in steps:  # needs only point at earlier steps, so one pass in definition order suffices
        level[step.id] = 1 + max((level[other] for other in needs[step.id]), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for step in steps:
        grouped[level[step.id]].append(step.id)
    return grouped
