"""WeatherAPI.com current conditions (`weatherapi` / `current`), request shape and messages as the old service.

The one fix: a 400 now reports WeatherAPI's own ``error.message`` (the old code meant to, but a catch-all swallowed
it and the raw body came out instead); the raw body remains the fallback.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..engine.errors import (
    UpstreamAuthError,
    UpstreamHTTPError,
    UserInputError,
    WorkflowError,
)
from ..engine.ports import CancelToken, OperationSpec, ServiceResult
from ..http.client import HttpResponse
from .base import (
    KeyedService,
    check_operation,
    clip,
    error_message_of,
    generic_status_error,
    is_missing,
    json_object,
    require_credential,
    send,
    snippet,
    upstream_error,
)

NAME = "weatherapi"
API_KEY_ENV = "WEATHERAPI_API_KEY"


class WeatherAPIService(KeyedService):
    name = NAME
    operations: Mapping[str, OperationSpec] = {
        "current": OperationSpec("current", optional=("q", "lat", "lng", "aqi", "lang"),
                                 alternatives=(("q",), ("lat", "lng"))),
    }

    def call(self, operation: str, params: Mapping[str, Any], *, timeout: float,
             cancel: Optional[CancelToken] = None) -> ServiceResult:
        check_operation(self.operations, operation, service=NAME)
        require_credential(self._api_key, f"{API_KEY_ENV} is not set: the weatherapi service needs it",
                           service=NAME, operation=operation)
        response = send(self._http, "GET", f"{self._base_url}/current.json", params=self._query(params),
                        headers={"Accept": "application/json"}, service=NAME, operation=operation,
                        timeout=timeout, cancel=cancel)
        if response.status != 200:
            raise self._status_error(response, operation)
        data = json_object(response, service=NAME, operation=operation, secrets=(self._api_key,))
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise self._error(UpstreamHTTPError, f"WeatherAPI error ({error.get('code') or 'unknown'}): "
                                                 f"{error.get('message') or 'Unknown error'}", operation, response)
        return ServiceResult(data=data, metadata={"status": response.status, "elapsed_ms": response.elapsed_ms},
                             status=response.status)

    def _query(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``q`` as given, else ``"<lat>,<lng>"``; the caller's params are never modified."""
        if not is_missing(params.get("q")):
            q = params["q"]
        elif not is_missing(params.get("lat")) and not is_missing(params.get("lng")):
            q = f"{params['lat']},{params['lng']}"
        else:
            raise UserInputError("Missing required parameter: q (or lat/lng)", service=NAME, operation="current")
        query: dict[str, Any] = {"key": self._api_key, "q": q}
        if "aqi" in params:
            query["aqi"] = "yes" if params["aqi"] else "no"
        if not is_missing(params.get("lang")):
            query["lang"] = params["lang"]
        return query

    def _status_error(self, response: HttpResponse, operation: str) -> WorkflowError:
        if response.status == 401:
            return self._error(UpstreamAuthError, "Invalid API key or API key not provided", operation, response)
        if response.status == 403:
            return self._error(UpstreamAuthError, "API key has been disabled or exceeded quota", operation, response)
        if response.status == 400:
            return self._error(UpstreamHTTPError, f"Bad request: {self._upstream_message(response)}", operation,
                               response)
        return generic_status_error(response, service=NAME, operation=operation, secrets=(self._api_key,))

    def _upstream_message(self, response: HttpResponse) -> str:
        message = error_message_of(response)
        return clip(message, (self._api_key,)) if message else snippet(response, (self._api_key,))

    def _error(self, cls: type[WorkflowError], message: str, operation: str,
               response: HttpResponse) -> WorkflowError:
        return upstream_error(cls, message, service=NAME, operation=operation, response=response,
                              secrets=(self._api_key,))
