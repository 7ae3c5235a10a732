"""The extraction path transforms use for ``paths``, ``array_path``, ``key``, ``sources`` and field references.

This is deliberately *not* the ``${...}`` grammar of :mod:`llm_service.engine.references`: it has no namespace,
and it is as forgiving as the old engine's (``.``, ``[`` and ``]`` are all just separators, so ``items.0``,
``items[0]`` and ``items[0].name`` all work, and empty pieces are ignored).

Changes from the old engine, both deliberate:

* ``*`` maps the rest of the path over the list, so ``items[*].name`` gives the list of names (the old engine
  returned ``items`` and silently ignored ``.name``);
* negative indexes count from the end (``items[-1]``).
"""
from __future__ import annotations

import re
from typing import Any

from .common import OperationError, is_list, is_map, kind_of

_INDEX = re.compile(r"-?\d+")


def split(path: str) -> list[str]:
    """``a.b[0][*].c`` -> ``["a", "b", "0", "*", "c"]``."""
    return [piece for piece in re.split(r"[.\[\]]", path) if piece]


def extract(data: Any, path: str) -> Any:
    """The value at ``path`` inside ``data``; an empty path is the data itself. Raises :class:`OperationError`."""
    return _walk(data, split(path))


def _walk(current: Any, pieces: list[str]) -> Any:
    for position, piece in enumerate(pieces):
        if piece == "*":
            if not is_list(current):
                raise OperationError(f"Cannot use wildcard on non-array ({kind_of(current)})")
            rest = pieces[position + 1:]
            return [_walk(element, rest) for element in current]
        current = _step(current, piece)
    return current


def _step(current: Any, piece: str) -> Any:
    if is_map(current):
        # A numeric piece on a map is a key: JSON maps may well have keys like "2024".
        if piece not in current:
            raise OperationError(f"Key '{piece}' not found in data")
        return current[piece]
    if _INDEX.fullmatch(piece):
        if not is_list(current):
            raise OperationError(f"Cannot index non-array ({kind_of(current)}) with [{piece}]")
        index = int(piece)
        if not -len(current) <= index < len(current):
            raise OperationError(f"Index {index} out of range for a list of {len(current)}")
        return current[index]
    raise OperationError(f"Cannot access key '{piece}' on {kind_of(current)}")


def select_source(data: Any, source: Any) -> Any:
    """``source`` as a key/path of a map input (extract_fields and markdown_to_json on direct calls).

    Only a non-empty string applied to a map counts: any other ``source`` is a value that the step layer has
    already substituted for the input, so it must not be looked up a second time.
    """
    if not (isinstance(source, str) and source and is_map(data)):
        return data
    try:
        return extract(data, source)
    except OperationError as exc:
        raise OperationError(f"source '{source}': {exc}") from None
