"""Operations that read or write text: regex_extract and template.

Non-string values that end up in text are rendered with :func:`~llm_service.engine.references.to_text` (maps and
lists as JSON, ``null`` / ``true`` / ``false``), the same way ``${...}`` placeholders render everywhere else,
instead of the old engine's Python reprs.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..references import PLACEHOLDER, to_text
from .common import OperationError, is_list, is_map, kind_of
from .params import ParamChecker, param

# ----------------------------------------------------------------------------------------------------- regex_extract
FLAG_NAMES: dict[str, re.RegexFlag] = {
    "IGNORECASE": re.IGNORECASE, "I": re.IGNORECASE,
    "MULTILINE": re.MULTILINE, "M": re.MULTILINE,
    "DOTALL": re.DOTALL, "S": re.DOTALL,
    "VERBOSE": re.VERBOSE, "X": re.VERBOSE,
    "ASCII": re.ASCII, "A": re.ASCII,
}
DEFAULT_FLAGS = re.DOTALL  # binding decision: `$` means end of text unless MULTILINE is asked for
_FLAGS_HINT = ("a list, or a '|' / ','-separated string, of IGNORECASE/I, MULTILINE/M, DOTALL/S, VERBOSE/X, "
               "ASCII/A (empty for no flags; default DOTALL)")


def parse_flags(value: Any) -> int:
    """``flags`` -> ``re`` flags. Raises :class:`OperationError` naming the offending entry."""
    if value is None:
        return DEFAULT_FLAGS
    if isinstance(value, str):
        names = [name.strip() for name in re.split(r"[|,]", value)]
    elif is_list(value):
        names = list(value)
    else:
        raise OperationError(f"'flags' must be {_FLAGS_HINT} (got {kind_of(value)})")
    flags = 0
    for name in names:
        if name == "":
            continue
        if not isinstance(name, str) or name.strip().upper() not in FLAG_NAMES:
            raise OperationError(f"Unknown regex flag {name!r} in 'flags': use {_FLAGS_HINT}")
        flags |= FLAG_NAMES[name.strip().upper()]
    return flags


def _group_param(value: Any) -> int | str | None:
    """``group`` as given: None (automatic), an int, or a group name (a digit string counts as an int)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise OperationError(f"'group' must be a group number or a group name (got {kind_of(value)})")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and value < 0:
        raise OperationError(f"'group' must not be negative (got {value})")
    return value


def _group_for(compiled: re.Pattern, group: int | str | None) -> int | str:
    """Without an explicit group: group 1 when the pattern captures something, else the whole match."""
    if group is None:
        return 1 if compiled.groups else 0
    if isinstance(group, int) and group > compiled.groups:
        raise OperationError(f"no such group: {group} (the pattern has {compiled.groups})")
    if isinstance(group, str) and group not in compiled.groupindex:
        raise OperationError(f"no such group: '{group}'")
    return group


def _patterns(params: Mapping[str, Any]) -> dict[str, str] | str | None:
    """``patterns`` (a map, wins when non-empty) or ``pattern``."""
    patterns = params.get("patterns")
    if patterns:
        return patterns
    return params.get("pattern") or None


def check_regex_extract(c: ParamChecker) -> None:
    flags = None
    try:
        flags = parse_flags(None if c.pending(c.get("flags")) else c.get("flags"))
    except OperationError as exc:
        c.fail(str(exc))
    group = None
    try:
        group = _group_param(None if c.pending(c.get("group")) else c.get("group"))
    except OperationError as exc:
        c.fail(str(exc))
    c.boolean("all_matches")
    if c.get("patterns"):
        named = c.mapping("patterns", hint="a map from result name to regular expression", string_values=True)
        candidates = dict(named or {})
    elif c.get("pattern") not in (None, ""):
        pattern = c.text("pattern", hint="a regular expression string")
        candidates = {"": pattern} if pattern is not None else {}
    else:
        c.fail("Missing 'pattern' or 'patterns' in config: a regular expression, or a map of name -> regular "
               "expression")
        return
    if flags is None:
        flags = DEFAULT_FLAGS  # still report broken patterns when the flags are wrong or not resolved yet
    for name, pattern in candidates.items():
        where = f"'patterns.{name}'" if name else "'pattern'"
        if not isinstance(pattern, str) or c.pending(pattern):
            continue
        try:
            compiled = re.compile(pattern, flags)
        except re.error as exc:
            c.fail(f"{where} is not a valid regular expression: {exc}")
            continue
        try:
            _group_for(compiled, group)
        except OperationError as exc:
            c.fail(f"{where}: {exc}")


def run_regex_extract(data: Any, params: Mapping[str, Any], lenient: bool) -> Any:
    text = data if isinstance(data, str) else to_text(data)
    flags = parse_flags(params.get("flags"))
    group = _group_param(params.get("group"))
    all_matches = bool(param(params, "all_matches", False))
    patterns = _patterns(params)
    if isinstance(patterns, str):
        return _extract(patterns, flags, text, group, all_matches)
    return {name: _extract(pattern, flags, text, group, all_matches) for name, pattern in patterns.items()}


def _extract(pattern: str, flags: int, text: str, group: int | str | None, all_matches: bool) -> Any:
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise OperationError(f"invalid regular expression {pattern!r}: {exc}") from None
    chosen = _group_for(compiled, group)
    if all_matches:
        return [match.group(chosen) for match in compiled.finditer(text)]
    match = compiled.search(text)
    return match.group(chosen) if match else None


# ---------------------------------------------------------------------------------------------------------- template
def check_template(c: ParamChecker) -> None:
    c.text("template", required=True, hint="a non-empty string with ${name} placeholders")
    c.mapping("variables", hint="a map from placeholder name to value")


def run_template(data: Any, params: Mapping[str, Any], lenient: bool) -> str | list[str]:
    template = params["template"]
    variables = param(params, "variables", {})
    if is_list(data):
        return [render(template, element, variables) for element in data]
    return render(template, data, variables)


def render(template: str, element: Any, variables: Mapping[str, Any]) -> str:
    """One pass over ``${key}``: the element's own keys (if it is a map) overlaid by ``variables``.

    Inserted text is never scanned again, and unknown placeholders stay as they are (they may be meant for a
    later stage).
    """
    values = dict(element) if is_map(element) else {}
    values.update(variables)

    def substitute(match: re.Match) -> str:
        key = match.group(1)
        return to_text(values[key]) if key in values else match.group(0)

    return PLACEHOLDER.sub(substitute, template)
