"""The OpenAPI 3 document, generated from the app's own routes and their ``endpoint`` declarations.

Request bodies, query parameters, response bodies and the error envelope all come from the marshmallow schemas the
views validate and serialise with (apispec's MarshmallowPlugin renders them), so the document describes exactly
what the code does. Errors every protected endpoint can return (401, 503, 500, and 400/413/422 for bodies) are
added here rather than repeated on each view.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from ..config import Config
from .auth import HEADER, INVALID_SECRET_MESSAGE, NOT_CONFIGURED_MESSAGE
from .endpoints import EndpointDoc, Failure, Reply
from .errors import QUEUE_DOWN_MESSAGE, STORE_DOWN_MESSAGE, error_body
from .schemas import ErrorSchema

OPENAPI_VERSION = "3.0.3"
SECURITY_SCHEME = "ApiSecret"
_IGNORED_METHODS = {"HEAD", "OPTIONS"}
_TAGS = [
    {"name": "service", "description": "Service information, health and documentation (no API secret)."},
    {"name": "workflows", "description": "Submit, validate and list workflows."},
    {"name": "jobs", "description": "Follow, list, cancel and delete jobs."},
]
_DESCRIPTION = (
    "Runs multi-step LLM workflows as background jobs. Every `/api/v1` endpoint needs the shared secret in the "
    f"`{HEADER}` header. Every error has the body `{{\"detail\": {{\"error\": CODE, \"message\": TEXT, ...}}, "
    "\"error\": CODE, \"message\": TEXT}}`; validation errors (422) add `errors`, a list of `{loc, msg, type}`.")

_AUTH_FAILURES = (
    Failure(401, "InvalidAPISecret", "The X-API-Secret header is missing or wrong",
            {"message": INVALID_SECRET_MESSAGE}),
    Failure(503, "AuthNotConfigured", "The server has no API secret configured", {"message": NOT_CONFIGURED_MESSAGE}),
)
_STORE_DOWN = Failure(503, "ServiceUnavailable", "The job store (Redis) is unreachable",
                      {"message": STORE_DOWN_MESSAGE, "component": "job_store"})
QUEUE_DOWN = Failure(503, "ServiceUnavailable", "The job queue is unreachable; nothing was queued",
                     {"message": QUEUE_DOWN_MESSAGE, "component": "job_queue"})
_BODY_FAILURES = (
    Failure(400, "InvalidJSON", "The body is not well-formed JSON",
            {"message": "Malformed JSON body: Expecting value at line 1 column 1. Send a JSON object "
                        "(Content-Type: application/json)."}),
    Failure(413, "PayloadTooLarge", "The body exceeds MAX_CONTENT_LENGTH",
            {"message": "Request body is larger than the limit of 1048576 bytes (MAX_CONTENT_LENGTH); send a "
                        "smaller body.", "max_bytes": 1048576}),
)
_VALIDATION = Failure(422, "ValidationError", "A field is missing or invalid", {
    "message": "workflow_name: Missing data for required field.; priority: Must be greater than or equal to 0 and "
               "less than or equal to 10.",
    "errors": [{"loc": ["body", "workflow_name"], "msg": "Missing data for required field.", "type": "missing"},
               {"loc": ["body", "priority"], "msg": "Must be greater than or equal to 0 and less than or equal to "
                                                    "10.", "type": "value_error"}]})
_CRASH = Failure(500, "InternalServerError", "Unexpected server error (logged)",
                 {"message": "Internal server error; the failure was logged."})


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _content(schema: Any, example: Any, media_type: str = "application/json") -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {media_type: body}


def _reply(reply: Reply) -> dict:
    if reply.headers:
        return {**_reply_body(reply), "headers": {
            name: {"description": text, "schema": {"type": "string"}} for name, text in reply.headers.items()}}
    return _reply_body(reply)


def _reply_body(reply: Reply) -> dict:
    if reply.schema is not None:
        return {"description": reply.description, "content": _content(reply.schema, reply.example)}
    if reply.media_type.startswith("text/"):
        return {"description": reply.description, "content": _content({"type": "string"}, reply.example,
                                                                       reply.media_type)}
    return {"description": reply.description, "content": _content({"type": "object"}, reply.example)}


def _failures(doc: EndpointDoc) -> list[Failure]:
    failures = list(doc.failures)
    if doc.protected:
        failures += _AUTH_FAILURES
        failures.append(_STORE_DOWN)
    if doc.body is not None:
        failures += _BODY_FAILURES
    if doc.body is not None or doc.query is not None:
        failures.append(_VALIDATION)
    failures.append(_CRASH)
    return failures


def _error_responses(failures: Iterable[Failure]) -> dict[str, dict]:
    by_status: dict[int, list[Failure]] = defaultdict(list)
    for failure in failures:
        if failure not in by_status[failure.status]:
            by_status[failure.status].append(failure)
    responses = {}
    for status, group in by_status.items():
        examples = {}
        for failure in group:
            extra = dict(failure.example)
            message = extra.pop("message", failure.description)
            key = failure.code if failure.code not in examples else f"{failure.code}_{len(examples) + 1}"
            examples[key] = {"summary": failure.description, "value": error_body(failure.code, message, **extra)}
        responses[str(status)] = {
            "description": "; ".join(f"`{f.code}`: {f.description}" for f in group),
            "content": {"application/json": {"schema": ErrorSchema, "examples": examples}},
        }
    return responses


def _operation(endpoint: str, doc: EndpointDoc) -> dict:
    operation: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"), "tags": [doc.tag], "summary": doc.summary,
        "security": [{SECURITY_SCHEME: []}] if doc.protected else [],
    }
    if doc.description:
        operation["description"] = doc.description
    parameters: list[dict] = [
        {"in": "path", "name": name, "required": True, "description": text,
         "schema": {"type": "string", "format": "uuid"}}
        for name, text in doc.path_params.items()]
    parameters += [{"in": "header", "name": name, "required": False, **parameter}
                   for name, parameter in doc.header_params.items()]
    if doc.query is not None:
        parameters.append({"in": "query", "schema": doc.query})
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {"required": not doc.body_optional,
                                    "content": _content(doc.body, doc.body_example)}
    responses = {str(reply.status): _reply(reply) for reply in doc.replies}
    responses.update(_error_responses(_failures(doc)))
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def build_openapi(app: Flask, config: Config) -> dict:
    spec = APISpec(title=config.api_title, version=config.api_version, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()], info={"description": _DESCRIPTION}, tags=_TAGS)
    spec.components.security_scheme(SECURITY_SCHEME, {
        "type": "apiKey", "in": "header", "name": HEADER,
        "description": "The shared secret (LLM_API_SECRET), compared in constant time."})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict[str, dict]] = defaultdict(dict)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        doc = getattr(app.view_functions.get(rule.endpoint), "api_doc", None)
        if doc is None:
            continue
        for method in sorted((rule.methods or set()) - _IGNORED_METHODS):
            paths[_openapi_path(rule.rule)][method.lower()] = _operation(rule.endpoint, doc)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
