"""``${...}`` references: the one resolver every step type uses.

Grammar (kept from the old engine): the text between ``${`` and ``}`` is a path whose first segment is a namespace
(``input``, ``steps`` or ``context``); the rest is dot-separated keys, each optionally followed by ``[n]`` list
indexes (negative counts from the end). ``items.0`` also indexes a list.

Two cases, as before:

* a string that is exactly one placeholder resolves to the value itself, type kept (map, list, number, null);
* placeholders embedded in text are rendered by :func:`to_text`: strings raw, maps and lists as JSON, null and
  booleans as ``null`` / ``true`` / ``false`` (the old engine used Python reprs). An embedded placeholder that
  cannot be resolved is left verbatim and reported as a warning.

References into a step that failed under ``error_mode: continue`` (or was skipped by a conditional) resolve to
null rather than failing, so a workflow can carry on without the data.
"""
from __future__ import annotations

import functools

import json
import re
from typing import Any, Callable, Container, Iterable, Mapping

from .errors import CONFIG_ERROR, USER_ERROR, ReferenceError_

NAMESPACES = ("input", "steps", "context")
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_INDEX = re.compile(r"\[([^\]]*)\]")



def to_text(value: Any) -> str:
    """How a value reads when embedded in text (prompts, templates, parameters)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


class Scope:
    """The data references resolve against: ``{"input": ..., "steps": ..., "context": ...}``.

    ``empty_steps`` names steps that produced no output (failed under ``continue``, or skipped): references
    into them resolve to null instead of failing.
    """

    def __init__(self, input_data: Any, steps: Mapping[str, Any], context: Mapping[str, Any] | None = None,
                 empty_steps: Container[str] = ()):
        self.namespaces = {"input": input_data, "steps": steps, "context": dict(context or {})}
        self.empty_steps = empty_steps

    def lookup(self, path: str) -> Any:
        return lookup(self.namespaces, path, empty_steps=self.empty_steps)


def split_path(path: str) -> tuple[str, list[Any]]:
    """``steps.a.items[0].name`` -> ``("steps", ["a", "items", 0, "name"])``. Raises ValueError on bad syntax."""
    namespace, segments = _parsed(path)
    return namespace, list(segments)


@functools.lru_cache(maxsize=4096)
def _parsed(path: str) -> tuple[str, tuple[Any, ...]]:
    """:func:`split_path`, remembered: a workflow resolves the same few dozen paths in every job, and parsing
    them was a tenth of the engine's own time per job."""
    if not path or not path.strip():
        raise ValueError("Path cannot be empty")
    path = path.strip()
    head, _, rest = path.partition(".")
    segments: list[Any] = []
    namespace = head
    if "[" in head:
        namespace, _, tail = head.partition("[")
        rest = "[" + tail + ("." + rest if rest else "")
        if not rest.startswith("["):
            raise ValueError("Unmatched bracket in path")
    for raw in _split_dots(rest):
        if "[" not in raw and "]" not in raw:
            segments.append(raw)
            continue
        if not raw.endswith("]"):
            raise ValueError(f"Unmatched bracket in path: {path}")
        key, _, indexes = raw.partition("[")
        if key:
            segments.append(key)
        indexes = "[" + indexes
        consumed = "".join(m.group(0) for m in _INDEX.finditer(indexes))
        if consumed != indexes:
            raise ValueError(f"Unmatched bracket in path: {path}")
        for match in _INDEX.finditer(indexes):
            text = match.group(1).strip()
            try:
                segments.append(_Index(int(text)))
            except ValueError:
                raise ValueError(f"Invalid array index: {match.group(1)}") from None
    return namespace, tuple(segments)


def _split_dots(rest: str) -> list[str]:
    # Dots inside brackets are not separators (``a[1].b`` is fine; ``a[x.y]`` is an invalid index anyway).
    parts, depth, current = [], 0, []
    for ch in rest:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "." and depth == 0:
            if current:
                parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts


class _Index(int):
    """A ``[n]`` segment (as opposed to a key that happens to be numeric)."""


def lookup(namespaces: Mapping[str, Any], path: str, *, empty_steps: Container[str] = ()) -> Any:
    """Resolve one path against the namespaces. Raises :class:`ReferenceError_` saying what is missing."""
    try:
        namespace, segments = _parsed(path)
    except ValueError as exc:
        raise ReferenceError_(f"Invalid reference ${{{path}}}: {exc}", details={"reference": path}) from None
    namespace = namespace.strip()
    if namespace not in namespaces:
        raise ReferenceError_(
            f"Unknown namespace '{namespace}' in ${{{path}}}: use one of {', '.join(NAMESPACES)}",
            details={"reference": path}, category=CONFIG_ERROR)
    current: Any = namespaces[namespace]
    in_empty_step = namespace == "steps" and bool(segments) and str(segments[0]) in empty_steps
    for position, segment in enumerate(segments):
        try:
            current = _step_into(current, segment)
        except LookupError as exc:
            if in_empty_step:
                return None
            walked = namespace + "".join(f"[{int(s)}]" if isinstance(s, _Index) else f".{s}"
                                         for s in segments[:position])
            category = USER_ERROR if namespace == "input" else CONFIG_ERROR
            raise ReferenceError_(f"Cannot resolve ${{{path}}}: {exc} (at '{walked}')",
                                  details={"reference": path}, category=category) from None
    return current


def _step_into(current: Any, segment: Any) -> Any:
    if isinstance(segment, _Index) or (isinstance(current, list) and isinstance(segment, str)
                                       and segment.lstrip("-").isdigit()):
        if not isinstance(current, list):
            raise LookupError(f"cannot index {kind_of(current)} with [{int(segment)}]")
        index = int(segment)
        if not -len(current) <= index < len(current):
            raise LookupError(f"index {index} is out of range for a list of {len(current)}")
        return current[index]
    if not isinstance(current, dict):
        raise LookupError(f"cannot read key '{segment}' of {kind_of(current)}")
    if segment not in current:
        raise LookupError(f"no key '{segment}'")
    return current[segment]


def kind_of(value: Any) -> str:
    """A short, JSON-flavoured name for a value's type in error messages ("a map", "a list", "null")."""
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


def type_name(value: Any) -> str:
    """:func:`kind_of` without the article ("map", "list", "null")."""
    return kind_of(value).removeprefix("a ")


def whole_placeholder(text: str) -> str | None:
    """The path when ``text`` is exactly one placeholder, else None."""
    match = PLACEHOLDER.fullmatch(text)
    return match.group(1) if match else None


def namespace_of(path: str) -> str:
    """The namespace a ``${...}`` path starts with (stripped); "" when the path cannot be split."""
    try:
        return split_path(path)[0].strip()
    except ValueError:
        return ""


def is_namespace_path(path: str) -> bool:
    head = re.split(r"[.\[]", path.strip(), maxsplit=1)[0]
    return head in NAMESPACES


class Resolver:
    """Resolves values for one step. Collects warnings for embedded placeholders it had to leave verbatim.

    ``foreign``: what to do with a placeholder whose first segment is not a namespace. ``"keep"`` leaves it for
    whoever reads the text next (template variables, prompt variables); ``"error"`` treats it as a mistake.
    ``missing``: what a whole-string reference that cannot be resolved gives: ``"error"`` raises,
    ``"null"`` gives None (used by the root ``outputs`` mapping).
    """

    def __init__(self, lookup_fn: Callable[[str], Any], *, foreign: str = "error", missing: str = "error"):
        self._lookup = lookup_fn
        self.foreign = foreign
        self.missing = missing
        self.warnings: list[str] = []

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.resolve_string(value)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def resolve_string(self, text: str) -> Any:
        if "${" not in text:
            return text
        path = whole_placeholder(text)
        if path is not None:
            if self.foreign == "keep" and not is_namespace_path(path):
                return text
            try:
                return self._lookup(path)
            except ReferenceError_:
                if self.missing == "null":
                    return None
                raise
        return self.render(text)

    def render(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            path = match.group(1)
            if self.foreign == "keep" and not is_namespace_path(path):
                return match.group(0)
            try:
                return to_text(self._lookup(path))
            except ReferenceError_ as exc:
                self.warnings.append(f"left {match.group(0)} unresolved: {exc}")
                return match.group(0)
        return PLACEHOLDER.sub(replace, text)


def find_references(value: Any) -> Iterable[str]:
    """Every placeholder path inside a JSON value (keys are not scanned, as they are never resolved)."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1).strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from find_references(item)


def referenced_step(path: str) -> str | None:
    """For ``steps.X...`` the step id X; ``""`` for the whole ``steps`` namespace; None for other namespaces."""
    try:
        namespace, segments = split_path(path)
    except ValueError:
        return None
    if namespace.strip() != "steps":
        return None
    if not segments:
        return ""
    return str(segments[0])
