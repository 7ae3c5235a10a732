"""Google Places (legacy Places Web Service JSON endpoints), request shapes and messages as the old service.

Google reports most failures inside a 200 response's ``status``; those are mapped to the same typed errors as
HTTP-level failures, and ``UNKNOWN_ERROR`` (Google's "try again") is now retryable.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..engine.errors import (
    UpstreamAuthError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamServerError,
)
from ..engine.ports import CancelToken, OperationSpec, ServiceResult
from ..http.client import HttpResponse
from .base import (
    KeyedService,
    check_operation,
    generic_status_error,
    json_object,
    query_for,
    require_credential,
    require_parameters,
    send,
    upstream_error,
)

NAME = "google_places"
API_KEY_ENV = "GOOGLE_PLACES_API_KEY"
API_KEY_FALLBACK_ENV = "NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY"

_PATHS = {"nearby_search": "nearbysearch/json", "text_search": "textsearch/json", "place_details": "details/json"}
_SEARCH_OK = frozenset({"OK", "ZERO_RESULTS"})
_DETAILS_OK = frozenset({"OK"})


class GooglePlacesService(KeyedService):
    name = NAME
    operations: Mapping[str, OperationSpec] = {
        "nearby_search": OperationSpec("nearby_search", required=("location", "radius"),
                                       optional=("type", "keyword", "name", "language")),
        "text_search": OperationSpec("text_search", required=("query",),
                                     optional=("location", "radius", "type", "language")),
        "place_details": OperationSpec("place_details", required=("place_id",), optional=("fields", "language")),
    }

    def call(self, operation: str, params: Mapping[str, Any], *, timeout: float,
             cancel: Optional[CancelToken] = None) -> ServiceResult:
        spec = check_operation(self.operations, operation, service=NAME)
        require_credential(self._api_key, f"{API_KEY_ENV} is not set (nor its fallback {API_KEY_FALLBACK_ENV}): "
                                          f"the google_places service needs it", service=NAME, operation=operation)
        require_parameters(spec, params, service=NAME)
        query = {**query_for(spec, params), "key": self._api_key}
        response = send(self._http, "GET", f"{self._base_url}/{_PATHS[operation]}", params=query,
                        headers={"Accept": "application/json"}, service=NAME, operation=operation,
                        timeout=timeout, cancel=cancel)
        if response.status != 200:
            raise generic_status_error(response, service=NAME, operation=operation, secrets=(self._api_key,))
        data = json_object(response, service=NAME, operation=operation, secrets=(self._api_key,))
        self._check_status(data, operation, params, response)
        return ServiceResult(data=data, metadata={"status": response.status, "elapsed_ms": response.elapsed_ms},
                             status=response.status)

    def _check_status(self, data: dict, operation: str, params: Mapping[str, Any], response: HttpResponse) -> None:
        status = str(data.get("status") or "")
        if status in (_DETAILS_OK if operation == "place_details" else _SEARCH_OK):
            return
        message = data.get("error_message") or "Unknown error"
        if status == "REQUEST_DENIED":
            cls, text = UpstreamAuthError, f"API request denied: {message}"
        elif status == "OVER_QUERY_LIMIT":
            cls, text = UpstreamRateLimited, f"API quota exceeded: {message}"
        elif status == "NOT_FOUND" and operation == "place_details":
            cls, text = UpstreamHTTPError, f"Place not found: {params.get('place_id')}"
        elif status == "UNKNOWN_ERROR":
            cls, text = UpstreamServerError, f"API error ({status}): {message}"
        else:
            cls, text = UpstreamHTTPError, f"API error ({status or 'missing status'}): {message}"
        raise upstream_error(cls, text, service=NAME, operation=operation, response=response,
                             secrets=(self._api_key,))
