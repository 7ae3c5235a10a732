"""The small expression language of ``conditional`` steps, e.g.
``${input.user_tier} == 'pro' and len(${steps.fetch.data.results}) > 0``.

Why a hand-written tokenizer, parser and evaluator: condition text comes from workflow files and may be built by
people who do not control the service, so nothing in it may ever reach Python's ``eval``/``compile`` or attribute
access. The grammar below is the whole language; anything else is an :class:`ExpressionError` at parse time, before
any reference is resolved. Parsing is cached because a workflow re-evaluates the same text for every job.

Grammar, loosest to tightest::

    expression := or_expr
    or_expr    := and_expr (("or" | "||") and_expr)*
    and_expr   := not_expr (("and" | "&&") not_expr)*
    not_expr   := ("not" | "!") not_expr | comparison
    comparison := operand [compare_op operand]      # no chaining: a < b < c is an error
    compare_op := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" | "contains"
    operand    := ["-"] NUMBER | STRING | "${" path "}" | true | false | null
                | "(" or_expr ")" | "[" [or_expr ("," or_expr)*] "]" | FUNCTION "(" or_expr ")"

Word operators and constants are case-insensitive (``AND``, ``True``, ``NULL``); ``None`` is accepted as null.

Semantics are JSON-flavoured rather than Python's: booleans are not numbers (``true == 1`` is false), ``==`` never
raises, ordering needs two numbers or two strings, and ``and``/``or`` short-circuit and always give booleans.
Resolution of ``${...}`` is left to the caller's callback; its exceptions propagate unchanged, except inside
``exists()``, whose whole purpose is to ask whether a reference resolves.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..redaction import redact_text
from .errors import ConfigurationError, ReferenceError_, UserInputError
from .references import split_path, type_name

__all__ = ["Expression", "ExpressionError", "MAX_DEPTH", "MAX_LENGTH", "evaluate_condition", "parse", "truthy"]

MAX_LENGTH = 2000
MAX_DEPTH = 50
_CACHE_SIZE = 1024

Resolve = Callable[[str], Any]


class ExpressionError(ConfigurationError):
    """The condition text is not a valid expression; the message shows where and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, position: int | None = None) -> None:
        details: dict[str, Any] = {}
        if source is not None:
            details["expression"] = source
        if position is not None:
            details["position"] = position
        super().__init__(_with_caret(message, source, position), details=details)
        self.problem = message
        self.source = source
        self.position = position


_SNIPPET_RADIUS = 60


def _with_caret(message: str, source: str | None, position: int | None) -> str:
    """Point at the offending character; long expressions are cut to a window so the caret stays readable."""
    if source is None or position is None:
        return message
    start = max(0, position - _SNIPPET_RADIUS)
    end = min(len(source), position + _SNIPPET_RADIUS)
    prefix = "..." if start else ""
    suffix = "..." if end < len(source) else ""
    # Newlines and tabs would break the caret's alignment; show them as spaces (same width).
    snippet = re.sub(r"\s", " ", source[start:end])
    caret = " " * (len(prefix) + position - start) + "^"
    return f"{message} (at column {position + 1})\n  {prefix}{snippet}{suffix}\n  {caret}"


# ----------------------------------------------------------------------------------------------------------------
# Values

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """null, false, 0, "", [] and {} are false; everything else is true."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def equal(left: Any, right: Any) -> bool:
    """``==`` across types without raising; numbers compare by value, booleans only equal booleans."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(equal(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(equal(left[k], right[k]) for k in left)
    if type_name(left) != type_name(right):
        return False
    return bool(left == right)


def _type_error(op: str, left: Any, right: Any, need: str) -> UserInputError:
    return UserInputError(f"Cannot apply '{op}' to {type_name(left)} and {type_name(right)}: {need}",
                          details={"operator": op, "left_type": type_name(left), "right_type": type_name(right)})


def _ordered(op: str, left: Any, right: Any) -> bool:
    if not ((_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))):
        raise _type_error(op, left, right, "it needs two numbers or two strings")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _contains(op: str, container: Any, item: Any) -> bool:
    """Membership shared by ``in``, ``not in`` and ``contains``; a null container contains nothing."""
    if container is None:
        return False
    if isinstance(container, (list, tuple)):
        return any(equal(item, element) for element in container)
    if isinstance(container, (str, dict)):
        if not isinstance(item, str):
            what = "a substring" if isinstance(container, str) else "a key"
            raise _type_error(op, *_operands(op, container, item), f"looking for {what} needs a string")
        return item in container
    raise _type_error(op, *_operands(op, container, item), "membership needs a list, map or string container")


def _operands(op: str, container: Any, item: Any) -> tuple[Any, Any]:
    # Name the types in the order the user wrote them.
    return (container, item) if op == "contains" else (item, container)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return equal(left, right)
    if op == "!=":
        return not equal(left, right)
    if op == "in":
        return _contains(op, right, left)
    if op == "not in":
        return not _contains(op, right, left)
    if op == "contains":
        return _contains(op, left, right)
    return _ordered(op, left, right)


# ----------------------------------------------------------------------------------------------------------------
# Functions (the whole whitelist)

def _fn_len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise _fn_type_error("len", value, "a string, list or map")


def _case_fn(name: str, convert: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return convert(value)
        raise _fn_type_error(name, value, "a string")
    return apply


def _fn_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _fn_number(value: Any) -> int | float:
    if _is_number(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC_TEXT.fullmatch(text):
            try:
                number = float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:  # more digits than Python will convert
                number = math.inf
            if math.isfinite(number):
                return number
        shown = redact_text(value if len(value) <= 40 else value[:40] + "...")
        raise UserInputError(f"number() cannot convert the string {shown!r} to a number",
                             details={"function": "number", "argument_type": "string"})
    raise _fn_type_error("number", value, "a number or a numeric string")


def _fn_type_error(name: str, value: Any, need: str) -> UserInputError:
    return UserInputError(f"{name}() needs {need}, got {type_name(value)}",
                          details={"function": name, "argument_type": type_name(value)})


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "len": _fn_len,
    "lower": _case_fn("lower", str.lower),
    "upper": _case_fn("upper", str.upper),
    "exists": lambda value: value is not None,
    "empty": _fn_empty,
    "number": _fn_number,
}


# ----------------------------------------------------------------------------------------------------------------
# Syntax tree. Nodes are immutable because parsed expressions are cached and shared between threads.

class _Node:
    def evaluate(self, resolve: Resolve) -> Any:
        raise NotImplementedError

    def children(self) -> tuple[_Node, ...]:
        return ()


@dataclass(frozen=True)
class _Literal(_Node):
    value: Any

    def evaluate(self, resolve: Resolve) -> Any:
        return self.value


@dataclass(frozen=True)
class _Reference(_Node):
    path: str

    def evaluate(self, resolve: Resolve) -> Any:
        return resolve(self.path)


@dataclass(frozen=True)
class _ListLiteral(_Node):
    items: tuple[_Node, ...]

    def evaluate(self, resolve: Resolve) -> Any:
        return [item.evaluate(resolve) for item in self.items]

    def children(self) -> tuple[_Node, ...]:
        return self.items


@dataclass(frozen=True)
class _Call(_Node):
    name: str
    argument: _Node

    def evaluate(self, resolve: Resolve) -> Any:
        if self.name == "exists" and isinstance(self.argument, _Reference):
            try:
                value = self.argument.evaluate(resolve)
            except ReferenceError_:
                return False
        else:
            value = self.argument.evaluate(resolve)
        return _FUNCTIONS[self.name](value)

    def children(self) -> tuple[_Node, ...]:
        return (self.argument,)


@dataclass(frozen=True)
class _Not(_Node):
    operand: _Node

    def evaluate(self, resolve: Resolve) -> Any:
        return not truthy(self.operand.evaluate(resolve))

    def children(self) -> tuple[_Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class _BoolOp(_Node):
    """``a and b and c`` / ``a or b or c`` as one flat node, so long chains do not nest."""
    op: str  # "and" | "or"
    operands: tuple[_Node, ...]

    def evaluate(self, resolve: Resolve) -> Any:
        stop_on = self.op == "or"  # or stops at the first true operand, and at the first false one
        for operand in self.operands:
            if truthy(operand.evaluate(resolve)) is stop_on:
                return stop_on
        return not stop_on

    def children(self) -> tuple[_Node, ...]:
        return self.operands


@dataclass(frozen=True)
class _Comparison(_Node):
    op: str
    left: _Node
    right: _Node

    def evaluate(self, resolve: Resolve) -> Any:
        return _compare(self.op, self.left.evaluate(resolve), self.right.evaluate(resolve))

    def children(self) -> tuple[_Node, ...]:
        return (self.left, self.right)


def _walk(node: _Node) -> Iterator[_Node]:
    # Pre-order, left to right: the order references appear in the text.
    yield node
    for child in node.children():
        yield from _walk(child)


class Expression:
    """A parsed expression. Immutable and safe to share; obtain one with :func:`parse`."""

    __slots__ = ("source", "_root", "_references")

    def __init__(self, source: str, root: _Node) -> None:
        self.source = source
        self._root = root
        self._references = tuple(node.path for node in _walk(root) if isinstance(node, _Reference))

    def evaluate(self, resolve: Resolve) -> Any:
        """The expression's value; ``resolve(path)`` is called for each ``${path}`` actually needed."""
        return self._root.evaluate(resolve)

    def references(self) -> list[str]:
        """Every ``${...}`` path in order of appearance (repeats included), whether or not evaluation needs it."""
        return list(self._references)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer

@dataclass(frozen=True)
class _Token:
    kind: str  # "number" | "string" | "ref" | "word" | "op" | "end"
    value: Any
    pos: int
    text: str

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        return f"'{self.text}'" if len(self.text) <= 30 else f"'{self.text[:30]}...'"


_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", "-")
_NUMBER = re.compile(r"\d+(\.\d+)?", re.ASCII)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_REF = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t"}


class _Tokenizer:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, source=self.source, position=pos)

    def tokens(self) -> list[_Token]:
        text, pos, out = self.source, 0, []
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                out.append(_Token("end", None, pos, ""))
                return out
            token = self._next(pos)
            out.append(token)
            pos += len(token.text)

    def _next(self, pos: int) -> _Token:
        text, ch = self.source, self.source[pos]
        if ch == "$":
            return self._reference(pos)
        if ch in "'\"":
            return self._string(pos)
        match = _NUMBER.match(text, pos)
        if match:
            literal = match.group(0)
            end = match.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "._"):
                raise self.error(f"Malformed number starting {literal!r}", pos)
            value = float(literal) if match.group(1) else int(literal)
            return _Token("number", value, pos, literal)
        match = _WORD.match(text, pos)
        if match:
            return _Token("word", match.group(0), pos, match.group(0))
        for op in _OPERATORS:
            if text.startswith(op, pos):
                return _Token("op", op, pos, op)
        if ch == "=":
            raise self.error("Unexpected '=': use '==' to compare", pos)
        if ch == "&" or ch == "|":
            raise self.error(f"Unexpected '{ch}': use '{ch * 2}' (or '{'and' if ch == '&' else 'or'}')", pos)
        raise self.error(f"Unexpected character {ch!r}", pos)

    def _reference(self, pos: int) -> _Token:
        match = _REF.match(self.source, pos)
        if not self.source.startswith("${", pos):
            raise self.error("Unexpected '$': references are written ${namespace.path}", pos)
        if match is None:
            raise self.error("Unterminated reference: expected '}' to close '${'", pos)
        path = match.group(1).strip()
        if not path:
            raise self.error("Empty reference '${}': expected a path such as ${input.name}", pos)
        if "${" in path:
            raise self.error("References cannot be nested", pos + 2 + match.group(1).index("${"))
        try:
            split_path(path)
        except ValueError as exc:
            raise self.error(f"Invalid reference path '{path}': {exc}", pos + 2) from None
        return _Token("ref", path, pos, match.group(0))

    def _string(self, pos: int) -> _Token:
        text, quote = self.source, self.source[pos]
        chars: list[str] = []
        i = pos + 1
        while i < len(text):
            ch = text[i]
            if ch == quote:
                return _Token("string", "".join(chars), pos, text[pos:i + 1])
            if ch == "\\":
                if i + 1 >= len(text):
                    break
                escaped = text[i + 1]
                if escaped not in _ESCAPES:
                    raise self.error(f"Unknown escape '\\{escaped}' in string: use \\', \\\", \\\\, \\n or \\t", i)
                chars.append(_ESCAPES[escaped])
                i += 2
                continue
            chars.append(ch)
            i += 1
        raise self.error(f"Unterminated string: expected a closing {quote}", pos)


# ----------------------------------------------------------------------------------------------------------------
# Parser (recursive descent; depth is bounded so hostile input cannot exhaust the stack)

_CONSTANTS = {"true": True, "false": False, "null": None}
_COMPARISON_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_WORD_OPERATORS = frozenset({"and", "or", "not", "in", "contains"})


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _Tokenizer(source).tokens()
        self.index = 0
        self.depth = 0

    # -- helpers
    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.current
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, message: str, token: _Token | None = None) -> ExpressionError:
        token = token or self.current
        return ExpressionError(message, source=self.source, position=token.pos)

    def expected(self, what: str) -> ExpressionError:
        return self.error(f"Expected {what}, found {self.current.describe()}")

    @staticmethod
    def is_word(token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.value.lower() in words

    def is_op(self, *ops: str) -> bool:
        return self.current.kind == "op" and self.current.value in ops

    def nested(self, parse: Callable[[], _Node]) -> _Node:
        if self.depth >= MAX_DEPTH:
            raise self.error(f"Expression is nested too deeply (the limit is {MAX_DEPTH} levels)")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    # -- grammar
    def parse(self) -> _Node:
        node = self.or_expr()
        if self.current.kind != "end":
            if self.comparison_op() is not None:
                raise self.error("Comparisons do not chain: combine them with 'and' (a < b and b < c)")
            raise self.expected("an operator ('and', 'or', '==', 'in', ...) or the end of the expression")
        return node

    def or_expr(self) -> _Node:
        return self.nested(lambda: self.bool_chain("or", "||", self.and_expr))

    def and_expr(self) -> _Node:
        return self.bool_chain("and", "&&", self.not_expr)

    def bool_chain(self, word: str, symbol: str, operand: Callable[[], _Node]) -> _Node:
        operands = [operand()]
        while self.is_word(self.current, word) or self.is_op(symbol):
            self.advance()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else _BoolOp(word, tuple(operands))

    def not_expr(self) -> _Node:
        if self.is_word(self.current, "not") or self.is_op("!"):
            self.advance()
            return _Not(self.nested(self.not_expr))
        return self.comparison()

    def comparison_op(self) -> tuple[str, int] | None:
        """The comparison operator at the current token and how many tokens it spans, if any."""
        token = self.current
        if token.kind == "op" and token.value in _COMPARISON_OPS:
            return token.value, 1
        if self.is_word(token, "in", "contains"):
            return token.value.lower(), 1
        if self.is_word(token, "not") and self.is_word(self.peek(), "in"):
            return "not in", 2
        return None

    def comparison(self) -> _Node:
        left = self.operand()
        found = self.comparison_op()
        if found is None:
            if self.is_word(self.current, "not"):
                raise self.error("Expected 'in' after 'not' (write 'not in'), or an operator such as 'and'",
                                 self.peek())
            return left
        op, width = found
        for _ in range(width):
            self.advance()
        right = self.operand()
        if self.comparison_op() is not None:
            raise self.error("Comparisons do not chain: combine them with 'and' (a < b and b < c)")
        return _Comparison(op, left, right)

    def operand(self) -> _Node:
        token = self.current
        if token.kind in ("number", "string"):
            self.advance()
            return _Literal(token.value)
        if token.kind == "ref":
            self.advance()
            return _Reference(token.value)
        if token.kind == "op":
            if token.value == "-":
                self.advance()
                if self.current.kind != "number":
                    raise self.expected("a number after unary '-' (it applies to numeric literals only)")
                return _Literal(-self.advance().value)
            if token.value == "(":
                return self.parenthesised()
            if token.value == "[":
                return self.list_literal()
        if token.kind == "word":
            return self.word()
        raise self.expected("a value (a ${reference}, number, 'string', true/false/null, function call or '(')")

    def parenthesised(self) -> _Node:
        opening = self.advance()
        inner = self.or_expr()
        if not self.is_op(")"):
            raise self.expected(f"')' to close the '(' at column {opening.pos + 1}")
        self.advance()
        return inner

    def list_literal(self) -> _Node:
        opening = self.advance()
        items: list[_Node] = []
        if not self.is_op("]"):
            items.append(self.or_expr())
            while self.is_op(","):
                self.advance()
                items.append(self.or_expr())
        if not self.is_op("]"):
            raise self.expected(f"',' or ']' to close the '[' at column {opening.pos + 1}")
        self.advance()
        return _ListLiteral(tuple(items))

    def word(self) -> _Node:
        token = self.current
        lowered = token.value.lower()
        if lowered in _CONSTANTS or token.value == "None":
            self.advance()
            return _Literal(_CONSTANTS.get(lowered))
        if lowered in _WORD_OPERATORS:
            raise self.expected("a value")
        if token.value in _FUNCTIONS:
            self.advance()
            if not self.is_op("("):
                raise self.expected(f"'(' after the function name '{token.value}'")
            opening = self.advance()
            if self.is_op(")"):
                raise self.error(f"{token.value}() takes exactly one argument")
            argument = self.or_expr()
            if self.is_op(","):
                raise self.error(f"{token.value}() takes exactly one argument")
            if not self.is_op(")"):
                raise self.expected(f"')' to close the '(' at column {opening.pos + 1}")
            self.advance()
            return _Call(token.value, argument)
        if self.peek().kind == "op" and self.peek().value == "(":
            raise self.error(f"Unknown function {token.describe()}: the functions are "
                             + ", ".join(sorted(_FUNCTIONS)))
        raise self.error(f"Unknown name {token.describe()}: write references as ${{input.name}} "
                         "and text in quotes ('text')")


# ----------------------------------------------------------------------------------------------------------------
# Public API

def parse(text: str) -> Expression:
    """Parse (or fetch from the cache) an expression. Raises :class:`ExpressionError` for anything invalid."""
    if not isinstance(text, str):
        raise ExpressionError(f"An expression must be a string, got {type_name(text)}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"Expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    return _parse_cached(text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(text: str) -> Expression:
    if not text.strip():
        raise ExpressionError("Expression is empty", source=text, position=0)
    return Expression(text, _Parser(text).parse())


def evaluate_condition(text: str, resolve: Resolve) -> bool:
    """Whether a condition holds: parse, evaluate, then apply truthiness."""
    return truthy(parse(text).evaluate(resolve))
