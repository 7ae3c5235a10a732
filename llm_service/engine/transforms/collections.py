"""Operations on lists and maps: extract_fields, filter, map, join, sort, unique, merge.

Each operation has a ``check_*`` (parameter problems, see :mod:`.params`) and a ``run_*``. ``lenient`` is the old
inner "continue" mode and only ever softens *per-element* problems (a filter element is dropped, a map element
or an extracted field becomes null); problems with the operation as a whole always raise.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Hashable, Mapping

from ..references import to_text
from . import paths
from .common import OperationError, is_list, is_map, kind_of, require_list
from .expressions import parse_condition, parse_map_expression
from .params import ParamChecker, param

log = logging.getLogger(__name__)


def _selected_list(data: Any, params: Mapping[str, Any], what: str) -> list:
    """The list an array operation works on: the input, or the value at ``array_path`` inside it."""
    array_path = param(params, "array_path")
    if array_path:
        data = paths.extract(data, array_path)
    return require_list(data, what)


def _per_element(items: list, fn: Callable[[Any], Any]) -> list:
    """``fn`` over the items; a failure names the element's position."""
    results = []
    for index, element in enumerate(items):
        try:
            results.append(fn(element))
        except OperationError as exc:
            raise OperationError(f"item {index}: {exc}") from None
    return results


# ---------------------------------------------------------------------------------------------------- extract_fields
def check_extract_fields(c: ParamChecker) -> None:
    c.mapping("paths", hint="a map from output name to path, e.g. {\"city\": \"location.city\"}",
              string_values=True)
    # ``source`` is not checked: a non-string source is a value the step layer already used as the input.


def run_extract_fields(data: Any, params: Mapping[str, Any], lenient: bool) -> dict:
    data = paths.select_source(data, params.get("source"))
    result: dict[str, Any] = {}
    for name, path in param(params, "paths", {}).items():
        try:
            result[name] = paths.extract(data, path)
        except OperationError as exc:
            if not lenient:
                raise OperationError(f"Failed to extract '{path}': {exc}") from None
            result[name] = None
    return result


# ------------------------------------------------------------------------------------------------------------ filter
def check_filter(c: ParamChecker) -> None:
    condition = c.text("condition", required=True, hint="a condition such as 'item.age >= 18' (operators ==, "
                                                         "!=, >=, <=, >, <, in, not in, contains)")
    if condition is not None:
        try:
            parse_condition(condition)
        except OperationError as exc:
            c.fail(f"'condition': {exc}")
    c.paths("array_path")


def run_filter(data: Any, params: Mapping[str, Any], lenient: bool) -> list:
    condition = parse_condition(params["condition"])
    kept = []
    for index, element in enumerate(_selected_list(data, params, "Filter")):
        try:
            if condition.matches(element):
                kept.append(element)
        except OperationError as exc:
            if not lenient:
                raise OperationError(f"item {index}: {exc}") from None
    return kept


# --------------------------------------------------------------------------------------------------------------- map
def check_map(c: ParamChecker) -> None:
    c.text("expression", required=True,
           hint="a field expression such as 'item.name', 'item.name.upper()' or 'item'")
    c.paths("array_path")


def run_map(data: Any, params: Mapping[str, Any], lenient: bool) -> list:
    expression = parse_map_expression(params["expression"])
    items = _selected_list(data, params, "Map")
    if not lenient:
        return _per_element(items, expression.apply)
    results = []
    for element in items:
        try:
            results.append(expression.apply(element))
        except OperationError:
            results.append(None)
    return results


# -------------------------------------------------------------------------------------------------------------- join
def check_join(c: ParamChecker) -> None:
    c.text("separator", hint="a string (default \", \")")
    c.paths("array_path")


def run_join(data: Any, params: Mapping[str, Any], lenient: bool) -> str:
    separator = param(params, "separator", ", ")
    items = _selected_list(data, params, "Join")
    return separator.join(to_text(element) for element in items if element is not None)


# -------------------------------------------------------------------------------------------------------------- sort
def check_sort(c: ParamChecker) -> None:
    c.paths("key", "array_path")
    c.boolean("reverse")


def run_sort(data: Any, params: Mapping[str, Any], lenient: bool) -> list:
    items = _selected_list(data, params, "Sort")
    key = param(params, "key")
    keys = _per_element(items, lambda element: paths.extract(element, key)) if key else items
    order = list(range(len(items)))
    try:
        order.sort(key=keys.__getitem__, reverse=bool(param(params, "reverse", False)))
    except TypeError:
        kinds = sorted({kind_of(value) for value in keys})
        raise OperationError(f"Cannot sort: the values are not mutually comparable ({', '.join(kinds)})") from None
    return [items[index] for index in order]


# ------------------------------------------------------------------------------------------------------------ unique
def check_unique(c: ParamChecker) -> None:
    c.paths("key", "array_path")


def run_unique(data: Any, params: Mapping[str, Any], lenient: bool) -> list:
    items = _selected_list(data, params, "Unique")
    key = param(params, "key")
    keys = _per_element(items, lambda element: paths.extract(element, key)) if key else items
    seen: set[Hashable] = set()
    kept = []
    for element, value in zip(items, keys):
        identity = _identity(value)
        if identity not in seen:
            seen.add(identity)
            kept.append(element)
    return kept


def _identity(value: Any) -> Hashable:
    """What "the same value" means for unique: JSON equality, where booleans are not numbers but 1 == 1.0.

    Maps compare regardless of key order (like canonical JSON with sorted keys).
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if is_map(value):
        return ("map", tuple(sorted((str(k), _identity(v)) for k, v in value.items())))
    if is_list(value):
        return ("list", tuple(_identity(item) for item in value))
    return ("other", to_text(value))


# ------------------------------------------------------------------------------------------------------------- merge
def check_merge(c: ParamChecker) -> None:
    c.string_list("sources", hint="a non-empty list of paths into the input, e.g. input: \"${steps}\" with "
                                  "sources: [\"a.output\", \"b.output\"]")
    c.text("strategy", hint="'deep' or 'shallow'")


def run_merge(data: Any, params: Mapping[str, Any], lenient: bool) -> dict:
    deep = param(params, "strategy") == "deep"
    merged: dict[str, Any] = {}
    for path in params["sources"]:
        try:
            value = paths.extract(data, path)
        except OperationError as exc:
            raise OperationError(f"source '{path}': {exc}") from None
        if not is_map(value):
            log.warning("merge: source '%s' is %s, not a map; skipped", path, kind_of(value))
            continue
        if deep:
            _deep_merge_into(merged, value)
        else:
            merged.update(value)
    return merged


def _deep_merge_into(target: dict, source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target`` recursively. Everything placed in ``target`` is a copy, so the inputs
    are never modified later through shared nested maps (the old engine mutated the first source)."""
    for key, value in source.items():
        if is_map(value) and is_map(target.get(key)):
            _deep_merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
