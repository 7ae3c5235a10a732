"""Pieces every integration shares: sending through the HttpClient, typed status errors, parameter checks.

Keeping these here means the three integrations agree on what an error carries (``service``, ``operation``,
``status_code``, a redacted 200-character body snippet) and on the old generic status mapping (§6.1 of the old
service): 401/403 auth, 429 quota, >=500 server error, anything else ``HTTP <code>: <body>``.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ..engine.errors import (
    ConfigurationError,
    MissingCredentialError,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamServerError,
    UserInputError,
    WorkflowError,
)
from ..engine.ports import CancelToken, OperationSpec
from ..http.client import HttpClient, HttpResponse
from ..redaction import redact_text, scrub_values

SNIPPET_CHARS = 200


def clip(text: str, secrets: Iterable[str] = ()) -> str:
    """Upstream text fit for a message: redacted *before* cutting to 200 characters, so no partial secret survives."""
    return redact_text(text, extra_secrets=tuple(secrets))[:SNIPPET_CHARS]


def snippet(response: HttpResponse, secrets: Iterable[str] = ()) -> str:
    """The first 200 characters of the body, redacted."""
    return clip(response.text(), secrets)


def error_message_of(response: HttpResponse) -> Optional[str]:
    """``error.message`` of a JSON error body (WeatherAPI and OpenAI-style both use it), if there is one."""
    try:
        error = response.json().get("error")
    except (WorkflowError, AttributeError):
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else None


def upstream_error(cls: type[WorkflowError], message: str, *, service: str, operation: str,
                   response: Optional[HttpResponse] = None, secrets: Iterable[str] = (),
                   retry_after: Optional[float] = None) -> WorkflowError:
    """An error of ``cls`` carrying where it came from; the message is scrubbed of ``secrets`` as a last guard."""
    return cls(redact_text(message, extra_secrets=tuple(secrets)), service=service, operation=operation,
               status_code=response.status if response is not None else None, retry_after=retry_after)


def generic_status_error(response: HttpResponse, *, service: str, operation: str,
                         secrets: Iterable[str] = ()) -> WorkflowError:
    """The old services' shared mapping of a non-200 status to an error."""
    code, body = response.status, snippet(response, secrets)
    where = dict(service=service, operation=operation, response=response, secrets=secrets)
    if code in (401, 403):
        return upstream_error(UpstreamAuthError, f"Authentication failed: {body}", **where)
    if code == 429:
        return upstream_error(UpstreamRateLimited, f"API quota exceeded: {body}",
                              retry_after=response.retry_after(), **where)
    if code >= 500:
        return upstream_error(UpstreamServerError, f"Server error ({code}): {body}", **where)
    return upstream_error(UpstreamHTTPError, f"HTTP {code}: {body}", **where)


def send(http: HttpClient, method: str, url: str, *, service: str, operation: str, timeout: float,
         cancel: Optional[CancelToken], **kwargs: Any) -> HttpResponse:
    """``http.request`` with the operation recorded on any error it raises."""
    try:
        return http.request(method, url, service=service, timeout=timeout, cancel=cancel, **kwargs)
    except WorkflowError as exc:
        exc.service = exc.service or service
        exc.operation = exc.operation or operation
        raise


def json_object(response: HttpResponse, *, service: str, operation: str, secrets: Iterable[str] = ()) -> dict:
    """The body as a JSON object; anything else is the upstream's fault (UpstreamBadResponse).

    ``secrets`` (the key the request was made with) are scrubbed from every string of the answer: an upstream that
    echoes the key back in a *successful* answer would otherwise carry it into results, the cache, later prompts
    (sent to another provider) and webhooks, none of which pass through the error path's redaction.
    """
    try:
        data = response.json()
    except WorkflowError as exc:
        exc.operation = operation
        raise
    if not isinstance(data, dict):
        raise upstream_error(UpstreamBadResponse,
                             f"Expected a JSON object from {service}, got {type(data).__name__}",
                             service=service, operation=operation, response=response)
    return scrub_values(data, secrets)


def require_credential(api_key: str, message: str, *, service: str, operation: Optional[str] = None) -> None:
    if not api_key:
        raise MissingCredentialError(message, service=service, operation=operation)


def check_operation(operations: Mapping[str, OperationSpec], operation: str, *, service: str) -> OperationSpec:
    spec = operations.get(operation)
    if spec is None:
        raise ConfigurationError(f"Unsupported operation: {operation}. Supported: {list(operations)}",
                                 service=service, operation=operation)
    return spec


def is_missing(value: Any) -> bool:
    return value is None or value == ""


def require_parameters(spec: OperationSpec, params: Mapping[str, Any], *, service: str) -> None:
    """Fail with the old ``Missing required parameter: <name>`` for the first absent required parameter."""
    for name in spec.required:
        if is_missing(params.get(name)):
            raise UserInputError(f"Missing required parameter: {name}", service=service, operation=spec.name)


def query_for(spec: OperationSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Required and present optional parameters, values passed as given (as the old services did)."""
    names = (*spec.required, *spec.optional)
    return {name: params[name] for name in names if not is_missing(params.get(name))}


class KeyedService:
    """What every key-authenticated upstream service holds: the shared HTTP helper, its key, its base URL."""

    def __init__(self, http: HttpClient, *, api_key: str, base_url: str) -> None:
        self._http = http
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")

    @property
    def upstream(self) -> str:
        """Who answers this service's calls (part of the cache key: the sandbox's answers are not the real ones)."""
        return self._base_url
