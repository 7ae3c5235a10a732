"""Parameter checks, written once and used twice: when a workflow is loaded and right before an operation runs.

At load time parameters are still raw workflow JSON, so any string containing ``${`` may become a list, a map or
a boolean once references are resolved: such values are *pending* and skipped. At run time the same checks see
the resolved values and nothing is pending, so a parameter of the wrong type fails with the same message the
validator would have given.

A parameter set to null counts as absent (its default applies).
"""
from __future__ import annotations

from typing import Any, Mapping

from .common import is_list, is_map, kind_of


def param(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``params[name]``, with null meaning "use the default"."""
    value = params.get(name)
    return default if value is None else value


class ParamChecker:
    """Collects human-readable problems with one operation's parameters."""

    def __init__(self, params: Mapping[str, Any], *, at_load: bool) -> None:
        self.params = params
        self.at_load = at_load
        self.problems: list[str] = []

    # -- primitives ------------------------------------------------------------------------------------------
    def pending(self, value: Any) -> bool:
        """True when ``value`` is still an unresolved reference, so its type cannot be judged yet."""
        return self.at_load and isinstance(value, str) and "${" in value

    def get(self, name: str) -> Any:
        return self.params.get(name)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def missing(self, name: str, hint: str) -> None:
        self.fail(f"Missing '{name}' in config: {hint}")

    def wrong(self, name: str, allowed: str, value: Any) -> None:
        self.fail(f"'{name}' must be {allowed} (got {kind_of(value)})")

    # -- typed parameters: each returns the value when it is usable now, else None ------------------------------
    def text(self, name: str, *, required: bool = False, hint: str = "a string") -> str | None:
        value = self.get(name)
        if value is None or (required and value == ""):
            if required:
                self.missing(name, hint)
            return None
        if not isinstance(value, str):
            self.wrong(name, hint, value)
            return None
        return None if self.pending(value) else value

    def boolean(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None or self.pending(value):
            return None
        if not isinstance(value, bool):
            self.wrong(name, "true or false", value)
            return None
        return value

    def mapping(self, name: str, *, hint: str, required: bool = False,
                string_values: bool = False) -> Mapping[str, Any] | None:
        value = self.get(name)
        if value is None or (required and is_map(value) and not value):
            if required:
                self.missing(name, hint)
            return None
        if self.pending(value):
            return None
        if not is_map(value):
            self.wrong(name, hint, value)
            return None
        if string_values:
            for key, item in value.items():
                if not isinstance(item, str):
                    self.fail(f"'{name}.{key}' must be a string (got {kind_of(item)})")
        return value

    def string_list(self, name: str, *, hint: str) -> list[str] | None:
        """A required, non-empty list of strings (entries that are pending references are allowed at load)."""
        value = self.get(name)
        if value is None or (is_list(value) and not value):
            self.missing(name, hint)
            return None
        if self.pending(value):
            return None
        if not is_list(value):
            self.wrong(name, hint, value)
            return None
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"'{name}[{index}]' must be a path string (got {kind_of(item)}); '{name}' is {hint}")
        return list(value)

    def paths(self, *names: str) -> None:
        """Optional §5.2 path parameters (``array_path``, ``key``, ``source``-as-key): strings when given."""
        for name in names:
            self.text(name, hint="a path string such as 'items' or 'user.name'")
