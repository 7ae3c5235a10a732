"""Google Places (legacy Places Web Service JSON endpoints), request shapes and messages as the old service.

Google reports most failures inside a 200 response's ``status``; those are mapped to the same typed errors as
HTTP-level failures, and ``UNKNOWN_ERROR`` (Google's "try again") is now retryable.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..engine.errors import UpstreamAuthError, UpstreamHTTPError, UpstreamRateLimited, UpstreamServerError
from ..engine.ports import OperationSpec
from ..http.client import HttpResponse
from .base import KeyedService, query_for, require_parameters

NAME = "google_places"
API_KEY_ENV = "GOOGLE_PLACES_API_KEY"
API_KEY_FALLBACK_ENV = "NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY"

_PATHS = {"nearby_search": "nearbysearch/json", "text_search": "textsearch/json", "place_details": "details/json"}
_SEARCH_OK = frozenset({"OK", "ZERO_RESULTS"})
_DETAILS_OK = frozenset({"OK"})


class GooglePlacesService(KeyedService):
    name = NAME
    api_key_env = API_KEY_ENV
    api_key_fallback_env = API_KEY_FALLBACK_ENV
    operations: Mapping[str, OperationSpec] = {
        "nearby_search": OperationSpec("nearby_search", required=("location", "radius"),
                                       optional=("type", "keyword", "name", "language")),
        "text_search": OperationSpec("text_search", required=("query",),
                                     optional=("location", "radius", "type", "language")),
        "place_details": OperationSpec("place_details", required=("place_id",), optional=("fields", "language")),
    }

    def request(self, spec: OperationSpec, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        require_parameters(spec, params, service=NAME)
        return _PATHS[spec.name], query_for(spec, params)

    def check_answer(self, data: dict, operation: str, params: Mapping[str, Any], response: HttpResponse) -> None:
        """Google reports most failures inside a 200 answer's ``status``."""
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
        raise self.error(cls, text, operation, response)
