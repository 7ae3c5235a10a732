"""One error shape for every failure: ``{"detail": {"error": CODE, "message": TEXT, ...extra}, "error": CODE,
"message": TEXT}``.

Clients of the old service read ``response.json()["detail"]["error"]``, so framework errors (404, 405, 413, bad JSON,
crashes) are wrapped the same way as application errors instead of Flask's HTML pages. Every error response is also
logged once, as a structured event without bodies or headers.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from flask import Flask, Response, jsonify, request
from marshmallow import fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from ..jobs import StoreUnavailable
from ..jobs.queue import QueueUnavailable
from ..logs import event

log = logging.getLogger("llm_service.api")

RETRY_AFTER_UNAVAILABLE = 5  # seconds a client should wait after a 503 caused by Redis or the broker


class ApiError(Exception):
    """An error answer. ``extra`` keys are merged into the ``detail`` object after ``error`` and ``message``."""

    def __init__(self, status: int, code: str, message: str, /, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        self.headers = headers or {}


def error_body(code: str, message: str, /, **extra: Any) -> dict:
    """``detail`` is what the old service's clients read; the client app's own library reads the top-level
    ``error`` (its admin pages ``message``), so both levels carry the code and the text."""
    return {"detail": {"error": code, "message": message, **extra}, "error": code, "message": message}


def error_response(error: ApiError) -> Response:
    response = jsonify(error_body(error.code, error.message, **error.extra))
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


# --------------------------------------------------------------------------------------------------------------
# Validation errors (422)

_REQUIRED = fields.Field.default_error_messages["required"]
_NULL = fields.Field.default_error_messages["null"]
TYPE_MESSAGES: set[str] = {
    message
    for kind in (fields.String(), fields.Integer(), fields.Float(), fields.Boolean(), fields.Dict(),
                 fields.List(fields.Raw()))
    for key, message in kind.error_messages.items() if key.startswith("invalid")
}


def register_type_message(message: str) -> str:
    """Custom field messages that mean "wrong type" (so the issue's ``type`` says so); returns the message."""
    TYPE_MESSAGES.add(message)
    return message


def _issue_type(message: str) -> str:
    if message == _REQUIRED:
        return "missing"
    if message == _NULL:
        return "null"
    if message in TYPE_MESSAGES:
        return "type_error"
    return "value_error"


def validation_issues(messages: Any, location: str) -> list[dict]:
    """Flatten marshmallow's nested messages into ``[{"loc": [location, field, ...], "msg", "type"}]``.

    Schema-level messages (``_schema``) are reported at the location itself (the whole body or query).
    """
    issues: list[dict] = []

    def walk(node: Any, path: list[Any]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path if key == "_schema" else [*path, key])
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            for message in node:
                issues.append({"loc": [location, *path], "msg": message, "type": _issue_type(message)})
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            issues.append({"loc": [location, *path], "msg": str(node), "type": _issue_type(str(node))})

    walk(messages, [])
    return issues


def validation_error(issues: Iterable[dict]) -> ApiError:
    """The 422 answer; its message names every field (``input_data: Must be a JSON object.; ...``)."""
    issues = list(issues)
    parts = []
    for issue in issues:
        where = ".".join(str(part) for part in issue["loc"][1:]) or issue["loc"][0]
        parts.append(f"{where}: {issue['msg']}")
    return ApiError(422, "ValidationError", "; ".join(parts), errors=issues)


# --------------------------------------------------------------------------------------------------------------
# Handlers

def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", " ").split())


def _from_http_exception(exc: HTTPException) -> ApiError:
    code = exc.code or 500
    if code == 404:
        return ApiError(404, "NotFound", f"No endpoint at {request.path}; see /docs for the API.")
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(exc.valid_methods or [])
        return ApiError(405, "MethodNotAllowed",
                        f"Method {request.method} is not allowed for {request.path}; allowed: {', '.join(allowed)}",
                        headers={"Allow": ", ".join(allowed)}, allowed_methods=allowed)
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        return ApiError(413, "PayloadTooLarge",
                        f"Request body is larger than the limit of {limit} bytes (MAX_CONTENT_LENGTH); "
                        "send a smaller body.", max_bytes=limit)
    if code >= 500:
        return ApiError(code, "InternalServerError", "Internal server error; the failure was logged.")
    return ApiError(code, _camel(exc.name or "Error"), exc.description or exc.name or "Request failed")


STORE_DOWN_MESSAGE = ("The job store (Redis) is not reachable: the request could not be completed and nothing "
                      "was queued. Retry in a few seconds.")
QUEUE_DOWN_MESSAGE = "The job queue (message broker) is not reachable, so nothing was queued. Retry in a few seconds."


def _unavailable(message: str, component: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message, component=component,
                    headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)})


def _log_error(error: ApiError, exc: BaseException | None = None, *, reason: str | None = None) -> None:
    """One event per error response; 500s carry the traceback (in the log only), 503s what was unreachable."""
    level = logging.ERROR if error.status >= 500 and error.status != 503 else logging.WARNING
    fields_ = dict(method=request.method, path=request.path, http_status=error.status, error=error.code,
                   endpoint=request.endpoint, reason=reason)
    if exc is not None:
        log.error("api.error", exc_info=exc, extra={"event": "api.error", **fields_})
        return
    event(log, "api.error", level=level, **fields_)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        _log_error(exc)
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        error = _from_http_exception(exc)
        _log_error(error)
        return error_response(error)

    @app.errorhandler(StoreUnavailable)
    def _store_down(exc: StoreUnavailable) -> Response:
        error = _unavailable(STORE_DOWN_MESSAGE, "job_store")
        _log_error(error, reason=str(exc))
        return error_response(error)

    @app.errorhandler(QueueUnavailable)
    def _queue_down(exc: QueueUnavailable) -> Response:
        error = _unavailable(QUEUE_DOWN_MESSAGE, "job_queue")
        _log_error(error, reason=str(exc))
        return error_response(error)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        error = ApiError(500, "InternalServerError", "Internal server error; the failure was logged.")
        _log_error(error, exc)
        return error_response(error)
