"""``X-API-Secret`` authentication for every ``/api/v1`` endpoint.

The presented secret is compared in constant time (the old API used ``==``); a missing header is 401 like a wrong
one (the old API answered 422). The check runs before the body is read, so a wrong secret wins over a bad body.
"""
from __future__ import annotations

import hashlib
import hmac

from flask import request

from .context import api_context
from .errors import ApiError

HEADER = "X-API-Secret"
INVALID_SECRET_MESSAGE = "Invalid or missing API secret. Include X-API-Secret header with valid secret."
NOT_CONFIGURED_MESSAGE = ("API authentication is not configured on the server: set LLM_API_SECRET "
                          "(the secret clients send in X-API-Secret).")


def _header_bytes(value: str) -> bytes:
    """WSGI hands header values over as latin-1 decoded text; this recovers the bytes the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def secret_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison on bytes (a missing header is compared as empty, taking the same path)."""
    return hmac.compare_digest(_header_bytes(presented or ""), expected.encode("utf-8"))


def api_key_id(secret: str) -> str:
    """A stable, non-reversible name for a presented secret (rate-limit buckets, logs): never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def presented_secret() -> str:
    return request.headers.get(HEADER) or ""


def require_api_secret() -> None:
    """``before_request`` hook of the ``/api/v1`` blueprint; CORS preflights (OPTIONS) carry no credentials."""
    if request.method == "OPTIONS":
        return
    expected = api_context().config.api_secret
    if not expected:
        raise ApiError(503, "AuthNotConfigured", NOT_CONFIGURED_MESSAGE)
    if not secret_matches(request.headers.get(HEADER), expected):
        raise ApiError(401, "InvalidAPISecret", INVALID_SECRET_MESSAGE)
