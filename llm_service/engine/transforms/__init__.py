"""The transform library: the ten data operations a workflow's ``transform`` step can run.

The step layer decides *what* data an operation sees (``input``, ``source`` or the whole context) and resolves
``${...}`` references in the parameters; this package only runs the operation:

* :func:`run_transform` runs one operation and turns every failure into ``TransformError("<op> failed: ...")``;
  an unknown operation is a :class:`ConfigurationError` (a broken workflow, not bad data);
* :func:`validate_params` gives the same parameter checks at load time, so a typo in a workflow file is reported
  before any job runs.

A null result is a legitimate result (``regex_extract`` without a match), not a failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import ConfigurationError, TransformError
from . import collections, markdown, text
from .common import OperationError, is_map, kind_of
from .params import ParamChecker

__all__ = ["OPERATION_NAMES", "run_transform", "validate_params"]


@dataclass(frozen=True)
class _Operation:
    run: Callable[[Any, Mapping[str, Any], bool], Any]
    check: Callable[[ParamChecker], None]


_REGISTRY: dict[str, _Operation] = {
    "extract_fields": _Operation(collections.run_extract_fields, collections.check_extract_fields),
    "filter": _Operation(collections.run_filter, collections.check_filter),
    "map": _Operation(collections.run_map, collections.check_map),
    "join": _Operation(collections.run_join, collections.check_join),
    "sort": _Operation(collections.run_sort, collections.check_sort),
    "unique": _Operation(collections.run_unique, collections.check_unique),
    "regex_extract": _Operation(text.run_regex_extract, text.check_regex_extract),
    "template": _Operation(text.run_template, text.check_template),
    "merge": _Operation(collections.run_merge, collections.check_merge),
    "markdown_to_json": _Operation(markdown.run_markdown_to_json, markdown.check_markdown_to_json),
}

OPERATION_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _unknown(operation: Any) -> str:
    return f"Unknown transformation: {operation}. Available: {', '.join(OPERATION_NAMES)}"


def _problems(operation: str, params: Any, *, at_load: bool) -> list[str]:
    if params is None:
        params = {}
    if not is_map(params):
        return [f"the {operation} config must be a map of parameters (got {kind_of(params)})"]
    checker = ParamChecker(params, at_load=at_load)
    _REGISTRY[operation].check(checker)
    return checker.problems


def validate_params(operation: str, params: Mapping[str, Any]) -> list[str]:
    """Load-time problems with an operation's parameters; an empty list means they look usable.

    Values that still contain ``${`` are resolved later and are only checked when the operation runs.
    """
    if operation not in _REGISTRY:
        return [_unknown(operation)]
    return _problems(operation, params, at_load=True)


def run_transform(operation: str, data: Any, params: Mapping[str, Any], *, lenient: bool = False) -> Any:
    """Run one operation on already-selected ``data`` with already-resolved ``params``.

    ``lenient`` (the old inner "continue" mode) only softens per-element problems: filter drops the element,
    map gives null for it, extract_fields gives null for that field.
    """
    spec = _REGISTRY.get(operation)
    if spec is None:
        raise ConfigurationError(_unknown(operation), operation=operation)
    problems = _problems(operation, params, at_load=False)
    if problems:
        raise TransformError(f"{operation} failed: {'; '.join(problems)}", operation=operation)
    try:
        return spec.run(data, params or {}, lenient)
    except OperationError as exc:
        raise TransformError(f"{operation} failed: {exc}", operation=operation) from exc
    except Exception as exc:  # noqa: BLE001 - the contract is "any failure is a TransformError"; cause is chained
        raise TransformError(f"{operation} failed: {type(exc).__name__}: {exc}", operation=operation) from exc
