"""CORS from ``CORS_ORIGINS`` without an extra dependency: allowed origins are echoed, credentials allowed, all
methods and requested headers allowed (as the old API configured it). ``*`` allows any origin (echoed, since a
literal ``*`` cannot be combined with credentials).
"""
from __future__ import annotations

from flask import Flask, Response, request

from .errors import ApiError

ALLOWED_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
PREFLIGHT_MAX_AGE = "600"


def _allowed(origin: str, origins: tuple[str, ...]) -> bool:
    return "*" in origins or origin in origins


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    @app.before_request
    def _preflight() -> Response | None:
        origin = request.headers.get("Origin")
        if request.method != "OPTIONS" or not origin or "Access-Control-Request-Method" not in request.headers:
            return None
        if not _allowed(origin, origins):
            raise ApiError(400, "DisallowedCORSOrigin",
                           f"Origin {origin[:200]} is not allowed; add it to CORS_ORIGINS.")
        response = app.make_response(("", 204))
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response

    @app.after_request
    def _cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and _allowed(origin, origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.vary.add("Origin")
        return response
