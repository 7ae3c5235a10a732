"""Workflow definitions: marshmallow schemas for the JSON format, and a loader that cannot escape its directory.

The format is the old engine's, accepted exactly (step settings live inside ``step.config``; external API steps
take ``method`` or ``operation`` and ``parameters`` or ``config``; transforms nest their parameters in
``config.config``). Unknown keys are ignored, as before. What is new is that every step's ``config`` is checked when
the file is loaded, so a typo is reported with the file, the step id and the field instead of surfacing mid-run.

Each step type's ``config`` schema and settings live with its executor in ``steps/<type>.py``; this module finds
them through the registry in :mod:`.steps`.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from .errors import ConfigurationError
from .prompts import unresolvable_reason
from .schema_fields import (
    ERROR_MODES,
    LenientSchema,
    Number,
    WholeNumber,
    alnum_id,
    error_mode_field,
    load_state,
)

if TYPE_CHECKING:  # pragma: no cover
    from .steps import StepType

EXECUTION_MODES = ("sequential", "dependencies")
_ABSENT = object()


def step_types() -> dict[str, "StepType"]:
    """The registered step types (``steps/<type>.py``), by name, in listing order."""
    from .steps import STEP_TYPES  # lazily: every step module imports this one

    return STEP_TYPES


class WorkflowNotFound(ConfigurationError):
    """No definition file for the name (API: 404)."""


class WorkflowInvalid(ConfigurationError):
    """The file exists but does not describe a valid workflow (API: 400). ``problems`` has one line each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class WorkflowLoadError(ConfigurationError):
    """The file could not be read or is not JSON (a server-side problem; API: 500)."""


# --------------------------------------------------------------------------------------------------------------
# Parsed definitions


@dataclass(frozen=True)
class RetryPolicy:
    retry_count: int = 3
    retry_delay: float = 1.0
    max_delay: float = 30.0


@dataclass
class Step:
    id: str
    type: str
    config: dict
    settings: Any
    error_mode: str | None = None          # as written at step level (None = not given)
    outputs: list[str] | None = None
    display_name: str | None = None
    description: str | None = None
    output_var: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    location: str = ""                      # e.g. "steps[3]" or "steps[2].config.steps[0]"

    @cached_property
    def kind(self) -> "StepType":
        """The descriptor of the step's type: its executor, its children, what it references... (looked up once:
        walking the steps asks it for every step, several times a run)."""
        return step_types()[self.type]

    @property
    def children(self) -> list["Step"]:
        return self.kind.children(self.settings)

    @property
    def title(self) -> str:
        """What a person watching the run sees for this step: its display name, else its id."""
        return self.display_name or self.id


@dataclass
class Workflow:
    name: str
    version: str
    description: str | None
    steps: list[Step]
    default_error_mode: str
    timeout_seconds: int
    inputs: list[dict] | None = None
    outputs: Any = _ABSENT
    execution: str | None = None
    source: str = ""

    @property
    def has_outputs(self) -> bool:
        return self.outputs is not _ABSENT

    def walk(self) -> Iterator[Step]:
        """Every step, depth first, in definition order (children right after their parent)."""
        yield from walk_steps(self.steps)

    def total_steps(self) -> int:
        return sum(1 for _ in self.walk())

    @cached_property
    def top_level_needs(self) -> dict[str, set[str]]:
        """For each top-level step, the earlier ones it waits for (``scheduling.dependencies``), worked out once
        per loaded definition instead of once per run (the engine keeps definitions until their file changes).
        Callers must not change the sets."""
        from .scheduling import dependencies  # scheduling reads this module's Step, so it is imported late

        return dependencies(self.steps)

    def with_input_defaults(self, input_data: dict) -> dict:
        """``input_data`` with each declared input's default filled in where it was not given."""
        for declared in self.inputs or ():
            if declared["name"] not in input_data and declared.get("default") is not None:
                input_data[declared["name"]] = declared["default"]
        return input_data

    def error_mode_of(self, step: Step) -> str:
        """Step-level ``error_mode`` governs; an inner ``config.error_mode`` is a fallback; then the default."""
        inner = getattr(step.settings, "inner_error_mode", None)
        return step.error_mode or inner or self.default_error_mode or "fail"


def walk_steps(steps: list[Step]) -> Iterator[Step]:
    for step in steps:
        yield step
        yield from walk_steps(step.children)


# --------------------------------------------------------------------------------------------------------------
# Schemas


class InputSchema(LenientSchema):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    type = fields.String(load_default="string")
    description = fields.String(allow_none=True, load_default=None)
    required = fields.Boolean(load_default=True)
    default = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _name_chars(self, data: dict, **_: Any) -> None:
        if "name" in data and not alnum_id(data["name"]):
            raise ValidationError(
                f"Input name '{data['name']}' must be alphanumeric (hyphens/underscores allowed)", "name")


class RetryConfigSchema(LenientSchema):
    retry_count = WholeNumber(validate=validate.Range(0, 10), load_default=None, allow_none=True)
    max_retries = WholeNumber(validate=validate.Range(0, 10), load_default=None, allow_none=True)
    retry_delay = Number(validate=validate.Range(0, 300), load_default=None, allow_none=True)
    max_delay = Number(validate=validate.Range(0, 3600), load_default=None, allow_none=True)


def _known_step_type(name: str) -> None:
    if name not in step_types():
        raise ValidationError(f"Unknown step type. Allowed: {', '.join(step_types())}.")


class StepSchema(LenientSchema):
    id = fields.String(required=True, validate=validate.Length(1, 50))
    type = fields.String(required=True, validate=_known_step_type)
    display_name = fields.String(allow_none=True, load_default=None)
    name = fields.String(allow_none=True, load_default=None)  # alias of display_name
    description = fields.String(allow_none=True, load_default=None)
    config = fields.Dict(load_default=dict)
    outputs = fields.List(fields.String(), allow_none=True, load_default=None)
    output_var = fields.String(allow_none=True, load_default=None)
    error_mode = error_mode_field()
    retry_config = fields.Nested(RetryConfigSchema, allow_none=True, load_default=None)
    retry_count = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(0, 10))
    retry_delay = Number(allow_none=True, load_default=None, validate=validate.Range(0, 300))

    @validates_schema(skip_on_field_errors=False)
    def _id_and_config(self, data: dict, **_: Any) -> None:
        """Report a bad id and a bad config together, so one run of validate shows every problem."""
        errors: dict[str, Any] = {}
        if "id" in data and not alnum_id(data["id"]):
            errors["id"] = [f"Step ID '{data['id']}' must be alphanumeric (hyphens/underscores allowed)"]
        kind = step_types().get(data.get("type", ""))
        if kind is not None and isinstance(data.get("config"), dict):
            try:
                kind.schema().load(data["config"])
            except ValidationError as exc:
                errors["config"] = exc.messages
        if errors:
            raise ValidationError(errors)

    @post_load
    def _make(self, data: dict, **_: Any) -> Step:
        settings = step_types()[data["type"]].schema().load(data["config"])
        retry = data.get("retry_config") or {}
        policy = RetryPolicy(
            retry_count=_first(data.get("retry_count"), retry.get("retry_count"), retry.get("max_retries"), 3),
            retry_delay=float(_first(data.get("retry_delay"), retry.get("retry_delay"), 1.0)),
            max_delay=float(_first(retry.get("max_delay"), 30.0)))
        return Step(id=data["id"], type=data["type"], config=data["config"], settings=settings,
                    error_mode=data["error_mode"], outputs=data["outputs"],
                    display_name=data["display_name"] or data["name"],
                    description=data["description"], output_var=data["output_var"], retry=policy)


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


class WorkflowSchema(LenientSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    version = fields.String(load_default="1.0.0")
    description = fields.String(allow_none=True, load_default=None)
    inputs = fields.List(fields.Nested(InputSchema), allow_none=True, load_default=None)
    steps = fields.List(fields.Nested(StepSchema), required=True, validate=validate.Length(
        min=1, error="A workflow needs at least one step."))
    default_error_mode = fields.String(load_default="fail", validate=validate.OneOf(
        ERROR_MODES, error="Must be one of: fail, continue, retry."))
    timeout_seconds = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(1, 3600))
    timeout = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(1, 3600))
    outputs = fields.Raw(allow_none=True)
    execution = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(
        EXECUTION_MODES, error="Must be one of: sequential, dependencies."))

    @validates_schema
    def _unique_ids(self, data: dict, **_: Any) -> None:
        seen: dict[str, int] = {}
        for step in walk_steps([s for s in data.get("steps") or [] if isinstance(s, Step)]):
            seen[step.id] = seen.get(step.id, 0) + 1
        duplicates = sorted(step_id for step_id, count in seen.items() if count > 1)
        if duplicates:
            raise ValidationError(f"Duplicate step IDs found: {', '.join(duplicates)}", "steps")

    @post_load
    def _make(self, data: dict, **_: Any) -> Workflow:
        steps = data["steps"]
        _assign_locations(steps, "steps")
        timeout = _first(data.get("timeout_seconds"), data.get("timeout"), 600)
        return Workflow(name=data["name"], version=data["version"], description=data["description"],
                        steps=steps, default_error_mode=data["default_error_mode"], timeout_seconds=timeout,
                        inputs=data["inputs"], outputs=data.get("outputs", _ABSENT), execution=data["execution"])


def _assign_locations(steps: list[Step], prefix: str) -> None:
    for index, step in enumerate(steps):
        step.location = f"{prefix}[{index}]"
        for nesting, children in step.kind.branches(step.settings):
            _assign_locations(children, f"{step.location}.config.{nesting.key}")


# --------------------------------------------------------------------------------------------------------------
# Loading


def parse_workflow(data: Any, *, source: str = "<workflow>",
                   services: Mapping[str, Any] | None = None) -> Workflow:
    """Validate a decoded JSON document. ``services`` maps service name -> operation names, when known."""
    if not isinstance(data, dict):
        raise WorkflowInvalid(f"{source}: a workflow must be a JSON object, got {type(data).__name__}",
                              [f"{source}: a workflow must be a JSON object"])
    load_state.services = services
    try:
        workflow = WorkflowSchema().load(data)
    except ValidationError as exc:
        problems = flatten_errors(exc.messages, data, source)
        raise WorkflowInvalid(f"Workflow definition invalid: {'; '.join(problems)}", problems) from None
    finally:
        load_state.services = None
    workflow.source = source
    return workflow


def flatten_errors(messages: Any, data: Any, source: str) -> list[str]:
    """Turn marshmallow's nested error dict into lines naming the file, the step id and the field."""
    lines: list[str] = []

    def describe(path: list[Any]) -> str:
        label, node, step_label = "", data, None
        for part in path:
            if isinstance(part, int):
                label += f"[{part}]"
                node = node[part] if isinstance(node, list) and part < len(node) else None
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    step_label = node["id"]
            else:
                label += ("." if label else "") + str(part)
                node = node.get(part) if isinstance(node, dict) else None
        where = f"step '{step_label}' ({label})" if step_label else (label or "workflow")
        return where

    def walk(node: Any, path: list[Any]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list) and node and all(isinstance(m, str) for m in node):
            for message in node:
                lines.append(f"{source}: {describe(path)}: {message}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            lines.append(f"{source}: {describe(path)}: {node}")

    walk(messages, [])
    return lines


def safe_name(name: str) -> bool:
    """Workflow names as the API accepts them: letters/digits plus ``-``/``_``, 1-100 characters."""
    return isinstance(name, str) and 0 < len(name) <= 100 and alnum_id(name)


def definition_path(root: str | os.PathLike, name: str) -> Path:
    """``<root>/definitions/<name>.json``, refusing any name that could leave the directory."""
    if not safe_name(name):
        raise WorkflowNotFound(
            f"Workflow '{name}' not found: names may only contain letters, digits, '-' and '_'")
    try:
        base = Path(root, "definitions").resolve()
        path = (base / f"{name}.json").resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: Path.resolve's report of a symlink loop
        raise WorkflowLoadError(f"Cannot read workflow file {name}.json: {unresolvable_reason(exc)}") from None
    if path.parent != base:
        raise WorkflowNotFound(f"Workflow '{name}' not found")
    return path


class DefinitionLoader:
    """Loads definitions from ``<root>/definitions``, caching parsed files until they change on disk."""

    def __init__(self, root: str | os.PathLike, *, services: Mapping[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.services = services
        self._cache: dict[Path, tuple[tuple[int, int], Workflow]] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        directory = self.root / "definitions"
        if not directory.is_dir():
            return []
        return sorted(p.stem for p in directory.glob("*.json") if safe_name(p.stem))

    def load(self, name: str) -> Workflow:
        """A name seen before skips path resolution while its file is unchanged (a stat, not a realpath walk);
        any change on disk resolves and checks the path again."""
        with self._lock:
            known = self._paths.get(name)
        if known is not None:
            try:
                stat = os.lstat(known) if not known.is_symlink() else None
            except OSError:
                stat = None
            with self._lock:
                cached = self._cache.get(known)
            if stat is not None and cached and cached[0] == (stat.st_mtime_ns, stat.st_size):
                return cached[1]
        path = definition_path(self.root, name)
        with self._lock:
            self._paths[name] = path
        return self.load_path(path, name=name)

    def load_path(self, path: Path, *, name: str | None = None) -> Workflow:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise WorkflowNotFound(f"Workflow '{name or path.stem}' not found") from None
        except OSError as exc:
            raise WorkflowLoadError(f"Cannot read workflow file {path.name}: {exc.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise WorkflowLoadError(f"Invalid JSON in workflow file '{path.name}': {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkflowLoadError(f"Cannot read workflow file {path.name}: {exc}") from None
        workflow = parse_workflow(data, source=f"definitions/{path.name}", services=self.services)
        with self._lock:
            self._cache[path] = (stamp, workflow)
        return workflow
