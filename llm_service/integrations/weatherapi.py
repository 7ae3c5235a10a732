"""WeatherAPI.com current conditions (`weatherapi` / `current`), request shape and messages as the old service.

The one fix: a 400 now reports WeatherAPI's own ``error.message`` (the old code meant to, but a catch-all swallowed
it and the raw body came out instead); the raw body remains the fallback.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..engine.errors import UpstreamAuthError, UpstreamHTTPError, UserInputError, WorkflowError
from ..engine.ports import OperationSpec
from ..http.client import HttpResponse
from .base import KeyedService, clip, error_message_of, is_missing, snippet

NAME = "weatherapi"
API_KEY_ENV = "WEATHERAPI_API_KEY"


class WeatherAPIService(KeyedService):
    name = NAME
    api_key_env = API_KEY_ENV
    operations: Mapping[str, OperationSpec] = {
        "current": OperationSpec("current", optional=("q", "lat", "lng", "aqi", "lang"),
                                 alternatives=(("q",), ("lat", "lng"))),
    }

    def request(self, spec: OperationSpec, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """``q`` as given, else ``"<lat>,<lng>"``; the caller's params are never modified."""
        if not is_missing(params.get("q")):
            q = params["q"]
        elif not is_missing(params.get("lat")) and not is_missing(params.get("lng")):
            q = f"{params['lat']},{params['lng']}"
        else:
            raise UserInputError("Missing required parameter: q (or lat/lng)", service=NAME, operation="current")
        query: dict[str, Any] = {"q": q}
        if "aqi" in params:
            query["aqi"] = "yes" if params["aqi"] else "no"
        if not is_missing(params.get("lang")):
            query["lang"] = params["lang"]
        return "current.json", query

    def status_error(self, response: HttpResponse, operation: str) -> WorkflowError:
        if response.status == 401:
            return self.error(UpstreamAuthError, "Invalid API key or API key not provided", operation, response)
        if response.status == 403:
            return self.error(UpstreamAuthError, "API key has been disabled or exceeded quota", operation, response)
        if response.status == 400:
            return self.error(UpstreamHTTPError, f"Bad request: {self._upstream_message(response)}", operation,
                              response)
        return super().status_error(response, operation)

    def check_answer(self, data: dict, operation: str, params: Mapping[str, Any], response: HttpResponse) -> None:
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise self.error(UpstreamHTTPError, f"WeatherAPI error ({error.get('code') or 'unknown'}): "
                                                f"{error.get('message') or 'Unknown error'}", operation, response)

    def _upstream_message(self, response: HttpResponse) -> str:
        message = error_message_of(response)
        return clip(message, (self._api_key,)) if message else snippet(response, (self._api_key,))
