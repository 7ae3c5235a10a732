"""Small helpers every transform module shares: the internal failure type and value-shape checks.

Operations raise :class:`OperationError` with a plain reason; the dispatcher in ``__init__`` turns it into the
public ``TransformError("<op> failed: <reason>")`` so the "<op> failed:" prefix is written in one place only.
"""
from __future__ import annotations

from typing import Any, Mapping


class OperationError(Exception):
    """Why an operation (or one element of it) could not be processed; the message is user-facing."""


def kind_of(value: Any) -> str:
    """A short, JSON-flavoured name for a value's type, for error messages (not Python class names)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def require_list(value: Any, what: str) -> list:
    """Array operations share the old "<Op> requires array input" wording; a string is not a list here."""
    if not is_list(value):
        raise OperationError(f"{what} requires array input (got {kind_of(value)})")
    return list(value)
