"""Sandbox answers for structured-output requests: a JSON value that fits the request's JSON Schema.

Deterministic and schema-driven (no model): the first ``enum``/``const`` value, the first ``anyOf``/``oneOf``
branch, every declared property of an object, ``minItems`` items of an array (at least one), numbers at their
minimum, and strings that name their field ("sandbox item"), so an author can see which value went where.
"""
from __future__ import annotations

from typing import Any, Mapping

MAX_DEPTH = 8


def instance_of(schema: Any, label: str = "sandbox answer", depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return label
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return instance_of(schema[key][0], label, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        return {name: instance_of(sub, f"sandbox {name}", depth + 1)
                for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 0))
        return [instance_of(schema.get("items"), label, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if "exclusiveMinimum" in schema and "minimum" not in schema else low
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = label
    low, high = int(schema.get("minLength") or 0), schema.get("maxLength")
    text = text.ljust(low, ".")
    return text[:high] if isinstance(high, int) else text
