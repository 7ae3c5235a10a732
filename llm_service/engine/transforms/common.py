"""Small helpers every transform module shares: the internal failure type and value-shape checks.

Operations raise :class:`OperationError` with a plain reason; the dispatcher in ``__init__`` turns it into the
public ``TransformError("<op> failed: <reason>")`` so the "<op> failed:" prefix is written in one place only.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..references import kind_of

__all__ = ["OperationError", "kind_of"]


class OperationError(Exception):
    """Why an operation (or one element of it) could not be processed; the message is user-facing."""


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def require_list(value: Any, what: str) -> list:
    """Array operations share the old "<Op> requires array input" wording; a string is not a list here."""
    if not is_list(value):
        raise OperationError(f"{what} requires array input (got {kind_of(value)})")
    return list(value)
