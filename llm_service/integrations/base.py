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
from ..engine.ports import CancelToken, OperationSpec, ServiceResult
from ..http.client import HttpClient, HttpResponse
from ..redaction import redact_text, scrub_parsed_json

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
    return scrub_parsed_json(data, response.body, secrets)


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
    """The template of a key-authenticated JSON service: the base owns the call (operation check, credential,
    sending through the shared HTTP helper with the key, status errors, JSON decoding scrubbed of the key, the
    result), so one integration only declares its ``name``, ``operations`` and ``api_key_env`` and says how an
    operation becomes a request (:meth:`request`), plus, where the upstream needs it, how its own statuses map to
    errors (:meth:`status_error`) and what in a 200 answer is still a failure (:meth:`check_answer`)."""

    name: str
    operations: Mapping[str, OperationSpec]
    api_key_env: str
    api_key_fallback_env: Optional[str] = None

    def __init__(self, http: HttpClient, *, api_key: str, base_url: str) -> None:
        self._http = http
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")

    @property
    def upstream(self) -> str:
        """Who answers this service's calls (part of the cache key: the sandbox's answers are not the real ones)."""
        return self._base_url

    def call(self, operation: str, params: Mapping[str, Any], *, timeout: float,
             cancel: Optional[CancelToken] = None) -> ServiceResult:
        spec = check_operation(self.operations, operation, service=self.name)
        fallback = f" (nor its fallback {self.api_key_fallback_env})" if self.api_key_fallback_env else ""
        require_credential(self._api_key, f"{self.api_key_env} is not set{fallback}: the {self.name} service needs it",
                           service=self.name, operation=operation)
        path, query = self.request(spec, params)
        response = send(self._http, "GET", f"{self._base_url}/{path}", params={**query, "key": self._api_key},
                        headers={"Accept": "application/json"}, service=self.name, operation=operation,
                        timeout=timeout, cancel=cancel)
        if response.status != 200:
            raise self.status_error(response, operation)
        data = json_object(response, service=self.name, operation=operation, secrets=(self._api_key,))
        self.check_answer(data, operation, params, response)
        return ServiceResult(data=data, metadata={"status": response.status, "elapsed_ms": response.elapsed_ms},
                             status=response.status)

    # -- what an integration says --------------------------------------------------------------------------------

    def request(self, spec: OperationSpec, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path under the base URL and the query (without the key) for ``params``; raises UserInputError for
        parameters the operation cannot use."""
        raise NotImplementedError

    def status_error(self, response: HttpResponse, operation: str) -> WorkflowError:
        """The error for a non-200 answer: the old services' shared mapping unless the upstream says more."""
        return generic_status_error(response, service=self.name, operation=operation, secrets=(self._api_key,))

    def check_answer(self, data: dict, operation: str, params: Mapping[str, Any], response: HttpResponse) -> None:
        """Raise for a 200 answer that reports a failure inside its body (nothing to check by default)."""

    def error(self, cls: type[WorkflowError], message: str, operation: str,
              response: Optional[HttpResponse] = None) -> WorkflowError:
        """An error of this service, scrubbed of its key."""
        return upstream_error(cls, message, service=self.name, operation=operation, response=response,
                              secrets=(self._api_key,))
