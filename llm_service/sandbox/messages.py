"""The request and response values passed between the transport and the endpoints.

Endpoints take a :class:`Request` and return a :class:`Reply`; they never touch the socket, so the transport
(``server.py``) is the single place that guarantees ``Content-Length`` on every response, which HTTP/1.1
keep-alive clients depend on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str  # without the query string, trailing "/" removed
    query: dict[str, str]  # first value of each parameter
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            return None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, encode_json(payload), JSON_TYPE, dict(headers or {}))

    @classmethod
    def text(cls, status: int, text: str, content_type: str = TEXT_TYPE,
             headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, text.encode("utf-8"), content_type, dict(headers or {}))


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def not_found(path: str) -> Reply:
    return Reply.json(404, {"error": {"message": f"No sandbox endpoint at {path}"}, "sandbox": True})


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> Reply:
    return Reply.json(405, {"error": {"message": f"Method {method} not allowed here"}, "sandbox": True},
                      headers={"Allow": ", ".join(allowed)})
