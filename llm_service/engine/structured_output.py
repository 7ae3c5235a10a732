"""Structured LLM output: the ``response_format`` an LLM step may ask for, and checking the answer against it.

The format is OpenAI's / OpenRouter's (``{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}``,
or ``{"type": "json_object"}`` for any JSON object), sent upstream as written. Providers that honour it answer in
shape; the ones that do not, and models that drift anyway, are caught here: the answer is parsed and validated with
the ``jsonschema`` package (a maintained validator, not hand code), and what did not match is worded so it can be
fed back to the model on a retry and shown to the workflow author when the step finally fails.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .errors import ExternalAPIError

FORMAT_TYPES = ("json_schema", "json_object")
MAX_REPORTED_PROBLEMS = 3
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class StructuredOutputError(ExternalAPIError):
    """The model's answer was not JSON, or not JSON of the requested shape, after every format retry."""
    retryable = False  # the step already retried with the error fed back; the runner must not multiply that


class OutputMismatch(ValueError):
    """One answer that did not fit; the message says where and how."""


def format_problems(response_format: Any) -> list[str]:
    """What is wrong with a step's ``response_format`` (empty when usable); used when loading definitions."""
    if not isinstance(response_format, Mapping):
        return ["must be an object such as {\"type\": \"json_schema\", \"json_schema\": {\"schema\": {...}}}"]
    kind = response_format.get("type")
    if kind not in FORMAT_TYPES:
        return [f"'type' must be one of: {', '.join(FORMAT_TYPES)}"]
    if kind == "json_object":
        return []
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
        return ["'json_schema' must be an object with a 'schema' object (and optionally 'name', 'strict')"]
    try:
        Draft202012Validator.check_schema(spec["schema"])
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"json_schema.schema is not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"]
    return []


def schema_of(response_format: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The JSON Schema an answer must satisfy: the given one, ``{"type": "object"}`` for ``json_object``."""
    if not response_format:
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    return response_format["json_schema"]["schema"]


def parse_answer(text: str, schema: Mapping[str, Any]) -> Any:
    """The answer as a JSON value that satisfies ``schema``; raises :class:`OutputMismatch` saying why not.

    A single surrounding Markdown code fence is tolerated (models add one even when told not to).
    """
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise OutputMismatch(f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
            from None
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        lines = [f"at {_pointer(e.absolute_path)}: {e.message}" for e in errors[:MAX_REPORTED_PROBLEMS]]
        more = len(errors) - len(lines)
        raise OutputMismatch("the answer does not match the schema: " + "; ".join(lines)
                             + (f" (and {more} more)" if more > 0 else ""))
    return value


def feedback_message(problem: OutputMismatch, schema: Mapping[str, Any]) -> str:
    """The user message a format retry sends after the model's wrong answer."""
    return (f"Your previous answer could not be used: {problem}. Answer again with only a JSON value (no prose, "
            f"no code fence) that matches this JSON Schema:\n{json.dumps(schema, ensure_ascii=False)}")


def _pointer(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/" + "/".join(parts) if parts else "the top level"
