"""Reading requests: the JSON body (strictly, with limits) and marshmallow loading of bodies and query strings.

The ``endpoint`` decorator is the single place a view declares its body and query schemas, its responses and its
documented errors; the same declaration drives validation here and the OpenAPI document in ``openapi.py``, so the
two cannot drift apart.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from flask import Response, jsonify, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from ..engine.references import type_name
from .errors import ApiError, validation_error, validation_issues

MAX_JSON_DEPTH = 100


# --------------------------------------------------------------------------------------------------------------
# JSON body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is too large")
    return value


def _invalid_json(reason: str) -> ApiError:
    return ApiError(400, "InvalidJSON", f"Malformed JSON body: {reason}. Send a JSON object "
                                        "(Content-Type: application/json).")


def _check_tree(value: Any) -> None:
    """Refuse documents nested deeper than MAX_JSON_DEPTH and strings with unpaired surrogates (``"\\ud800"``):
    neither can be stored or processed safely, and both are client errors, not server errors."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _invalid_json(f"nested more than {MAX_JSON_DEPTH} levels deep")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid_json("a string contains an unpaired UTF-16 surrogate escape") from None


def _body_bytes() -> bytes:
    """The raw body, with MAX_CONTENT_LENGTH enforced (413) for streamed bodies too.

    Werkzeug refuses a declared Content-Length over the limit, but a chunked body (no Content-Length; the server sets
    ``wsgi.input_terminated``) is silently cut at the limit, which turned an oversized body into a misleading
    "Malformed JSON" 400, or accepted it when the cut left valid JSON. One more byte from the server's stream tells a
    body of exactly the limit from a longer one.
    """
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if (limit is not None and request.content_length is None and len(raw) >= limit
            and request.environ["wsgi.input"].read(1)):
        raise RequestEntityTooLarge()
    return raw


def read_json_body() -> Any:
    """The decoded body; 400 ``InvalidJSON`` for anything that is not well-formed JSON, 422 when it is absent.

    The body is read whatever the Content-Type (as the old API did); bodies over MAX_CONTENT_LENGTH are 413.
    """
    raw = _body_bytes()
    if not raw.strip():
        raise validation_error([{"loc": ["body"], "msg": "A JSON object is required.", "type": "missing"}])
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise _invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _invalid_json(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # undecodable bytes, NaN/Infinity, integers beyond Python's digit limit
        raise _invalid_json(str(exc).split("\n")[0][:200]) from None
    _check_tree(value)
    return value


def _json_type(value: Any) -> str:
    """JSON's words for a value's type ("array", "object"), for messages about request bodies."""
    name = type_name(value)
    return {"list": "array", "map": "object"}.get(name, name)


def load_body(schema: Schema) -> dict:
    value = read_json_body()
    if not isinstance(value, dict):
        raise validation_error([{"loc": ["body"], "type": "type_error",
                                 "msg": f"The request body must be a JSON object, got {_json_type(value)}."}])
    return _load(schema, value, "body")


def load_query(schema: Schema) -> dict:
    # A repeated parameter counts once, with its last value (as the old API read it).
    args = {name: request.args.getlist(name)[-1] for name in request.args}
    return _load(schema, args, "query")


def _load(schema: Schema, data: dict, location: str) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_error(validation_issues(exc.messages, location)) from None


# --------------------------------------------------------------------------------------------------------------
# Endpoint declarations


@dataclass(frozen=True)
class Reply:
    """A documented success response: status, description, schema (class) and an example body."""
    status: int
    description: str
    schema: type[Schema] | None = None
    example: Any = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # response header name -> description


@dataclass(frozen=True)
class Failure:
    """A documented error response specific to the endpoint: ``ErrorCode`` plus an example message/extras."""
    status: int
    code: str
    description: str
    example: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointDoc:
    summary: str
    description: str
    tag: str
    replies: tuple[Reply, ...]
    failures: tuple[Failure, ...] = ()
    body: type[Schema] | None = None
    body_example: Any = None
    query: type[Schema] | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    header_params: dict[str, dict] = field(default_factory=dict)  # optional request header -> OpenAPI parameter
    protected: bool = True
    body_optional: bool = False


@functools.lru_cache(maxsize=None)
def _instance(schema: type[Schema]) -> Schema:
    """One instance per schema class: building a marshmallow schema costs more than loading a body with it, and
    instances are safe to share between threads for load/dump."""
    return schema()


def endpoint(*, summary: str, description: str = "", tag: str, replies: Sequence[Reply],
             failures: Sequence[Failure] = (), body: type[Schema] | None = None, body_example: Any = None,
             query: type[Schema] | None = None, path_params: dict[str, str] | None = None,
             header_params: dict[str, dict] | None = None, protected: bool = True,
             body_optional: bool = False) -> Callable:
    """Declare a view's contract. The view receives ``body=`` / ``query=`` (loaded dicts) when declared; with
    ``body_optional`` an empty body loads as ``{}`` (the schema's defaults)."""
    doc = EndpointDoc(summary=summary, description=description, tag=tag, replies=tuple(replies),
                      failures=tuple(failures), body=body, body_example=body_example, query=query,
                      path_params=dict(path_params or {}), header_params=dict(header_params or {}),
                      protected=protected, body_optional=body_optional)

    def decorate(view: Callable) -> Callable:
        body_schema = _instance(body) if body is not None else None
        query_schema = _instance(query) if query is not None else None

        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            if body_schema is not None:
                empty = body_optional and not _body_bytes().strip()
                kwargs["body"] = _load(body_schema, {}, "body") if empty else load_body(body_schema)
            if query_schema is not None:
                kwargs["query"] = load_query(query_schema)
            return view(**kwargs)

        wrapper.api_doc = doc  # type: ignore[attr-defined]
        return wrapper

    return decorate


def respond(schema: type[Schema], data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise through the response schema, so the body has exactly the documented keys."""
    response = jsonify(_instance(schema).dump(data))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
