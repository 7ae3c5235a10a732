"""The two tiny expression languages of ``filter`` (conditions) and ``map`` (field reads with a case change).

Both refer to the current element as ``item``: ``item`` alone is the element, ``item.a.b`` / ``item[0]`` a path
inside it, and a path without the prefix (``age``) works too. Only a *leading* ``item`` is the element, so
``item.line_item.x`` reads ``line_item.x`` (the old engine deleted every ``item.`` and read ``line_x``).

Conditions are ``<operand> <operator> <operand>``. The split point is the leftmost operator outside a quoted
literal, longest first at each position, so ``not in`` works and ``name == "a > b"`` splits at ``==``.
Operands: ``"text"`` / ``'text'`` (quotes removed, no unescaping), numbers (float if they contain ``.``),
``true`` / ``false`` / ``null`` / ``none`` (any case), otherwise a field path of the element.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..references import to_text
from . import paths
from .common import OperationError, kind_of

OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "in", "not in", "contains")
_OPERATOR = re.compile(r"==|!=|>=|<=|>|<|\s+not\s+in\s+|\s+in\s+|\s+contains\s+")
_QUOTES = "\"'"
_CASE_METHODS = {".upper()": str.upper, ".lower()": str.lower}


@dataclass(frozen=True)
class FieldRef:
    """A path into the current element (``""`` = the element itself)."""

    path: str

    @classmethod
    def parse(cls, text: str) -> "FieldRef":
        text = text.strip()
        if text == "item":
            return cls("")
        if text.startswith("item.") or text.startswith("item["):
            return cls(text[4:])
        return cls(text)

    def read(self, element: Any) -> Any:
        return paths.extract(element, self.path)


@dataclass(frozen=True)
class Literal:
    value: Any

    def read(self, element: Any) -> Any:
        return self.value


def parse_operand(text: str) -> Literal | FieldRef:
    text = text.strip()
    if text[:1] in _QUOTES:
        if len(text) < 2 or text[-1] != text[0]:
            raise OperationError(f"unterminated quoted literal {text}")
        return Literal(text[1:-1])
    if text[:1].isdigit() or (text[:1] in "+-." and text[1:2].isdigit()):
        try:
            return Literal(float(text) if "." in text else int(text))
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return Literal(lowered == "true")
    if lowered in ("null", "none"):
        return Literal(None)
    return FieldRef.parse(text)


@dataclass(frozen=True)
class Condition:
    left: Literal | FieldRef
    operator: str
    right: Literal | FieldRef
    text: str

    def matches(self, element: Any) -> bool:
        left, right = self.left.read(element), self.right.read(element)
        try:
            return bool(_apply(self.operator, left, right))
        except TypeError:
            raise OperationError(
                f"cannot evaluate {kind_of(left)} {self.operator} {kind_of(right)} in '{self.text}'") from None


def _apply(operator: str, left: Any, right: Any) -> Any:
    if operator == "==":
        return left == right
    if operator == "!=":
        return left != right
    if operator == ">=":
        return left >= right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    if operator == "<":
        return left < right
    if operator == "in":
        return left in right
    if operator == "not in":
        return left not in right
    return right in left  # contains


def parse_condition(text: str) -> Condition:
    """Raises :class:`OperationError` for a condition without an operator or with an empty side."""
    quote = None
    for position, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
            continue
        if char in _QUOTES and _opens_literal(text, position):
            quote = char
            continue
        match = _OPERATOR.match(text, position)
        if match:
            left, right = text[:position], text[match.end():]
            if not left.strip() or not right.strip():
                break
            operator = " ".join(match.group(0).split())
            try:
                return Condition(parse_operand(left), operator, parse_operand(right), text.strip())
            except OperationError as exc:
                raise OperationError(f"Invalid condition '{text}': {exc}") from None
    raise OperationError(f"Invalid condition '{text}': expected <field> <operator> <value> with one of "
                         f"{', '.join(OPERATORS)}")


def _opens_literal(text: str, position: int) -> bool:
    # A quote starts a literal only at the start of an operand, so an apostrophe inside a word (O'Brien) does not.
    before = text[:position].rstrip()
    return not before or before[-1] in "=!<>" or text[position - 1].isspace()


@dataclass(frozen=True)
class MapExpression:
    field: FieldRef
    case: str | None  # ".upper()" / ".lower()" / None

    def apply(self, element: Any) -> Any:
        value = self.field.read(element)
        if self.case is None:
            return value
        if isinstance(value, str):
            return _CASE_METHODS[self.case](value)
        if not value:
            # Falsy values (null, 0, false, empty containers) have no case: kept as they are.
            return value
        return _CASE_METHODS[self.case](to_text(value))


def parse_map_expression(text: str) -> MapExpression:
    text = text.strip()
    for suffix in _CASE_METHODS:
        if text.endswith(suffix):
            return MapExpression(FieldRef.parse(text[: -len(suffix)]), suffix)
    return MapExpression(FieldRef.parse(text), None)
