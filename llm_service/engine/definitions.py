"""Workflow definitions: marshmallow schemas for the JSON format, and a loader that cannot escape its directory.

The format is the old engine's, accepted exactly (step settings live inside ``step.config``; external API steps
take ``method`` or ``operation`` and ``parameters`` or ``config``; transforms nest their parameters in
``config.config``). Unknown keys are ignored, as before. What is new is that every step's ``config`` is checked when
the file is loaded, so a typo is reported with the file, the step id and the field instead of surfacing mid-run.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from .errors import ConfigurationError
from .prompts import unresolvable_reason

STEP_TYPES = ("llm", "transform", "external_api", "conditional", "parallel")
ERROR_MODES = ("fail", "continue", "retry")
EXECUTION_MODES = ("sequential", "dependencies")
DEFAULT_MODEL = "anthropic/claude-3.5-sonnet"
_ABSENT = object()


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

    @property
    def children(self) -> list["Step"]:
        return list(getattr(self.settings, "children", []))

    @property
    def title(self) -> str:
        """What a person watching the run sees for this step: its display name, else its id."""
        return self.display_name or self.id


@dataclass(frozen=True)
class LLMSettings:
    model: str
    prompt_template: str | None
    prompt_text: str | None
    system_prompt: str | None
    system_prompt_template: str | None
    user_message: str | None
    temperature: float
    max_tokens: int
    timeout: float | None
    top_p: float | None
    variables: dict
    provider: str | None
    inner_error_mode: str | None
    response_format: dict | None = None
    max_format_retries: int = 1
    models: tuple[str, ...] = ()       # fallbacks after ``model``, tried in order
    stream: bool = False  # the answer arrives token by token; watchers see it as ``llm.token`` events

    @property
    def candidate_models(self) -> list[str]:
        """Every model the step may call, in the order they are tried."""
        return list(dict.fromkeys([self.model, *self.models]))


@dataclass(frozen=True)
class TransformSettings:
    operation: str
    input: str | None
    params: dict
    inner_error_mode: str | None
    default_value: Any = None


@dataclass(frozen=True)
class ExternalAPISettings:
    service: str
    operation: str
    parameters: dict
    cache_ttl: int | None
    timeout: float | None
    inner_error_mode: str | None


@dataclass
class ParallelSettings:
    children: list[Step]
    max_concurrency: int | None
    inner_error_mode: str | None = None


@dataclass
class ConditionalSettings:
    condition: str
    then: list[Step]
    otherwise: list[Step]
    inner_error_mode: str | None = None

    @property
    def children(self) -> list[Step]:
        return [*self.then, *self.otherwise]


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


def _alnum_id(value: str) -> bool:
    stripped = value.replace("-", "").replace("_", "")
    return bool(stripped) and stripped.isalnum()


class WholeNumber(fields.Integer):
    """An integer; numeric strings such as "300" are coerced, fractional numbers and booleans are not."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise ValidationError("Must be a whole number.")
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise self.make_error("invalid") from None
            if not number.is_integer():
                raise ValidationError("Must be a whole number.")
            value = int(number)
        return super()._deserialize(value, attr, data, **kwargs)


class Number(fields.Float):
    """A number (not a boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


_error_mode = dict(validate=validate.OneOf(ERROR_MODES, error="Must be one of: fail, continue, retry."),
                   load_default=None, allow_none=True)


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class InputSchema(_Base):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    type = fields.String(load_default="string")
    description = fields.String(allow_none=True, load_default=None)
    required = fields.Boolean(load_default=True)
    default = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _name_chars(self, data: dict, **_: Any) -> None:
        if "name" in data and not _alnum_id(data["name"]):
            raise ValidationError(
                f"Input name '{data['name']}' must be alphanumeric (hyphens/underscores allowed)", "name")


class RetryConfigSchema(_Base):
    retry_count = WholeNumber(validate=validate.Range(0, 10), load_default=None, allow_none=True)
    max_retries = WholeNumber(validate=validate.Range(0, 10), load_default=None, allow_none=True)
    retry_delay = Number(validate=validate.Range(0, 300), load_default=None, allow_none=True)
    max_delay = Number(validate=validate.Range(0, 3600), load_default=None, allow_none=True)


class LLMConfigSchema(_Base):
    model = fields.String(load_default=None, validate=validate.Length(1, 200))
    prompt_template = fields.String(allow_none=True, load_default=None)
    prompt_text = fields.String(allow_none=True, load_default=None)
    system_prompt = fields.String(allow_none=True, load_default=None)
    system_prompt_template = fields.String(allow_none=True, load_default=None)
    user_message = fields.String(allow_none=True, load_default=None)
    temperature = Number(load_default=0.7, validate=validate.Range(0.0, 2.0))
    max_tokens = WholeNumber(load_default=4000, validate=validate.Range(1, 16000))
    timeout = Number(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=3600))
    top_p = Number(allow_none=True, load_default=None, validate=validate.Range(0.0, 1.0))
    variables = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    provider = fields.String(allow_none=True, load_default=None)
    error_mode = fields.String(**_error_mode)
    streaming = fields.Raw(load_default=None)  # accepted and ignored, as before
    response_format = fields.Dict(allow_none=True, load_default=None)
    max_format_retries = WholeNumber(load_default=1, validate=validate.Range(0, 5))
    models = fields.List(fields.String(validate=validate.Length(1, 200)), load_default=list,
                         validate=validate.Length(max=10))
    stream = fields.Boolean(load_default=False)

    @validates_schema
    def _needs_prompt(self, data: dict, **_: Any) -> None:
        if not data.get("prompt_template") and not data.get("prompt_text"):
            raise ValidationError("Must provide either 'prompt_template' or 'prompt_text'", "prompt_template")

    @validates_schema
    def _response_format(self, data: dict, **_: Any) -> None:
        from .structured_output import format_problems

        if data.get("response_format") is not None:
            problems = format_problems(data["response_format"])
            if problems:
                raise ValidationError(problems, "response_format")

    @post_load
    def _make(self, data: dict, **_: Any) -> LLMSettings:
        return LLMSettings(
            prompt_template=data["prompt_template"], prompt_text=data["prompt_text"],
            system_prompt=data["system_prompt"], system_prompt_template=data["system_prompt_template"],
            user_message=data["user_message"], temperature=data["temperature"], max_tokens=data["max_tokens"],
            timeout=data["timeout"], top_p=data["top_p"], variables=data["variables"], provider=data["provider"],
            inner_error_mode=data["error_mode"], response_format=data["response_format"],
            max_format_retries=data["max_format_retries"],
            # ``model`` is tried first; without it the first of ``models`` is the primary.
            model=data["model"] or (data["models"][0] if data["models"] else DEFAULT_MODEL),
            models=tuple(data["models"]), stream=data["stream"])


class TransformConfigSchema(_Base):
    operation = fields.String(required=True)
    input = fields.String(allow_none=True, load_default=None)
    config = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    error_mode = fields.String(**_error_mode)
    default_value = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _operation(self, data: dict, **_: Any) -> None:
        from .transforms import OPERATION_NAMES, validate_params

        operation = data.get("operation")
        if operation is None:
            return
        if operation not in OPERATION_NAMES:
            raise ValidationError(
                f"Unknown transformation '{operation}'. Allowed: {', '.join(OPERATION_NAMES)}", "operation")
        problems = validate_params(operation, data.get("config") or {})
        if problems:
            raise ValidationError(problems, "config")

    @post_load
    def _make(self, data: dict, **_: Any) -> TransformSettings:
        return TransformSettings(operation=data["operation"], input=data["input"], params=data["config"],
                                 inner_error_mode=data["error_mode"], default_value=data["default_value"])


class ExternalAPIConfigSchema(_Base):
    service = fields.String(required=True, error_messages={"required": "Missing required field: service"})
    method = fields.String(allow_none=True, load_default=None)
    operation = fields.String(allow_none=True, load_default=None)
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True,
                             load_default=None)
    config = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True,
                         load_default=None)
    cache_ttl = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(min=0))
    timeout = Number(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=3600))
    error_mode = fields.String(**_error_mode)

    @validates_schema
    def _known(self, data: dict, **_: Any) -> None:
        operation = data.get("operation") or data.get("method")
        if not operation:
            raise ValidationError("Missing required field: operation (or its alias 'method')", "operation")
        known: Mapping[str, Any] | None = _load_state.services
        service = data.get("service")
        if known is None or service is None:
            return
        if service not in known:
            raise ValidationError(
                f"Unknown service '{service}'. Allowed: {', '.join(sorted(known)) or 'none configured'}", "service")
        operations = known[service]
        if operation not in operations:
            raise ValidationError(
                f"Unknown operation '{operation}' for service '{service}'. Allowed: {', '.join(sorted(operations))}",
                "operation")

    @post_load
    def _make(self, data: dict, **_: Any) -> ExternalAPISettings:
        # Aliases as the old engine read them: `operation` wins over `method`; a non-empty `config` over `parameters`.
        return ExternalAPISettings(
            service=data["service"], operation=data.get("operation") or data["method"],
            parameters=dict(data.get("config") or data.get("parameters") or {}),
            cache_ttl=data["cache_ttl"], timeout=data["timeout"], inner_error_mode=data["error_mode"])


class ParallelConfigSchema(_Base):
    steps = fields.List(fields.Nested(lambda: StepSchema()), required=True, validate=validate.Length(min=1))
    max_concurrency = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(min=1, max=1000))
    error_mode = fields.String(**_error_mode)

    @post_load
    def _make(self, data: dict, **_: Any) -> ParallelSettings:
        return ParallelSettings(children=data["steps"], max_concurrency=data["max_concurrency"],
                                inner_error_mode=data["error_mode"])


class ConditionalConfigSchema(_Base):
    condition = fields.String(required=True, validate=validate.Length(1, 2000))
    then = fields.List(fields.Nested(lambda: StepSchema()), load_default=list)
    else_ = fields.List(fields.Nested(lambda: StepSchema()), load_default=list, data_key="else")
    error_mode = fields.String(**_error_mode)

    @validates_schema
    def _parse_condition(self, data: dict, **_: Any) -> None:
        from .expressions import ExpressionError, parse

        if "condition" in data:
            try:
                parse(data["condition"])
            except ExpressionError as exc:
                raise ValidationError(str(exc), "condition") from None

    @post_load
    def _make(self, data: dict, **_: Any) -> ConditionalSettings:
        return ConditionalSettings(condition=data["condition"], then=data["then"], otherwise=data["else_"],
                                   inner_error_mode=data["error_mode"])


CONFIG_SCHEMAS: dict[str, type[Schema]] = {
    "llm": LLMConfigSchema, "transform": TransformConfigSchema, "external_api": ExternalAPIConfigSchema,
    "parallel": ParallelConfigSchema, "conditional": ConditionalConfigSchema,
}


class StepSchema(_Base):
    id = fields.String(required=True, validate=validate.Length(1, 50))
    type = fields.String(required=True, validate=validate.OneOf(
        STEP_TYPES, error=f"Unknown step type. Allowed: {', '.join(STEP_TYPES)}."))
    display_name = fields.String(allow_none=True, load_default=None)
    name = fields.String(allow_none=True, load_default=None)  # alias of display_name
    description = fields.String(allow_none=True, load_default=None)
    config = fields.Dict(load_default=dict)
    outputs = fields.List(fields.String(), allow_none=True, load_default=None)
    output_var = fields.String(allow_none=True, load_default=None)
    error_mode = fields.String(**_error_mode)
    retry_config = fields.Nested(RetryConfigSchema, allow_none=True, load_default=None)
    retry_count = WholeNumber(allow_none=True, load_default=None, validate=validate.Range(0, 10))
    retry_delay = Number(allow_none=True, load_default=None, validate=validate.Range(0, 300))

    @validates_schema(skip_on_field_errors=False)
    def _id_and_config(self, data: dict, **_: Any) -> None:
        """Report a bad id and a bad config together, so one run of validate shows every problem."""
        errors: dict[str, Any] = {}
        if "id" in data and not _alnum_id(data["id"]):
            errors["id"] = [f"Step ID '{data['id']}' must be alphanumeric (hyphens/underscores allowed)"]
        schema = CONFIG_SCHEMAS.get(data.get("type", ""))
        if schema is not None and isinstance(data.get("config"), dict):
            try:
                schema().load(data["config"])
            except ValidationError as exc:
                errors["config"] = exc.messages
        if errors:
            raise ValidationError(errors)

    @post_load
    def _make(self, data: dict, **_: Any) -> Step:
        settings = CONFIG_SCHEMAS[data["type"]]().load(data["config"])
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


class WorkflowSchema(_Base):
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
        settings = step.settings
        if isinstance(settings, ParallelSettings):
            _assign_locations(settings.children, f"{step.location}.config.steps")
        elif isinstance(settings, ConditionalSettings):
            _assign_locations(settings.then, f"{step.location}.config.then")
            _assign_locations(settings.otherwise, f"{step.location}.config.else")


# --------------------------------------------------------------------------------------------------------------
# Loading


class _LoadState(threading.local):
    services: Mapping[str, Any] | None = None


_load_state = _LoadState()


def parse_workflow(data: Any, *, source: str = "<workflow>",
                   services: Mapping[str, Any] | None = None) -> Workflow:
    """Validate a decoded JSON document. ``services`` maps service name -> operation names, when known."""
    if not isinstance(data, dict):
        raise WorkflowInvalid(f"{source}: a workflow must be a JSON object, got {type(data).__name__}",
                              [f"{source}: a workflow must be a JSON object"])
    _load_state.services = services
    try:
        workflow = WorkflowSchema().load(data)
    except ValidationError as exc:
        problems = flatten_errors(exc.messages, data, source)
        raise WorkflowInvalid(f"Workflow definition invalid: {'; '.join(problems)}", problems) from None
    finally:
        _load_state.services = None
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
    return isinstance(name, str) and 0 < len(name) <= 100 and _alnum_id(name)


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
