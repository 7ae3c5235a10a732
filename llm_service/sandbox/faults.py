"""Fault injection: make the next N matching requests misbehave in one of a few realistic ways.

A fault matches by path prefix (``/places/nearbysearch`` matches ``/places/nearbysearch/json``) and optionally by
method and, for chat completions, by the requested ``model`` (to demonstrate an LLM step's model fallbacks).
``count`` says how many matching requests get it (then the endpoint is normal again); ``-1`` means until the faults
are cleared. The first active matching fault wins, in the order they were added.

Faults that need the raw socket (half-sent bodies, resets) write through the small :class:`Wire` interface the
transport implements, so this module knows nothing about ``http.server``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .messages import HTML_TYPE, JSON_TYPE, Reply, encode_json

KINDS = ("status", "retry_after", "timeout", "slow_drip", "reset", "malformed_json", "wrong_content_type",
         "huge_body")

DEFAULTS: dict[str, dict[str, Any]] = {
    "status": {"status": 500},
    "retry_after": {"status": 429, "retry_after": 1},
    "timeout": {"delay": 30.0},
    "slow_drip": {"interval": 0.2, "chunk": 8},
    "reset": {},
    "malformed_json": {},
    "wrong_content_type": {"status": 200},
    "huge_body": {"size": 20 * 1024 * 1024},
}
_NUMERIC = {"status": int, "retry_after": int, "chunk": int, "size": int, "delay": float, "interval": float}
_STREAM_CHUNK = 64 * 1024


class FaultSpecError(ValueError):
    """A fault description that cannot be used; the message says why."""


@dataclass
class Fault:
    path: str
    kind: str
    count: int = 1
    method: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    def matches(self, method: str, path: str, model: str | None = None) -> bool:
        return (path.startswith(self.path) and (self.method is None or self.method == method)
                and (self.model is None or self.model == model))

    def option(self, name: str) -> Any:
        return self.options.get(name, DEFAULTS[self.kind].get(name))

    def to_dict(self) -> dict[str, Any]:
        described = {"path": self.path, "kind": self.kind, "count": self.count, "method": self.method}
        if self.model is not None:
            described["model"] = self.model
        return {**described, **self.options}


def parse_fault(spec: Mapping[str, Any]) -> Fault:
    if not isinstance(spec, Mapping):
        raise FaultSpecError("Each fault must be a JSON object")
    options = dict(spec)
    path, kind = options.pop("path", None), options.pop("kind", None)
    count, method = options.pop("count", 1), options.pop("method", None)
    model = options.pop("model", None)
    if not isinstance(path, str) or not path.startswith("/"):
        raise FaultSpecError("'path' must be a path prefix starting with '/'")
    if kind not in KINDS:
        raise FaultSpecError(f"'kind' must be one of {', '.join(KINDS)}")
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != -1):
        raise FaultSpecError("'count' must be a positive integer, or -1 for every request")
    if method is not None and not isinstance(method, str):
        raise FaultSpecError("'method' must be a string")
    if model is not None and (not isinstance(model, str) or not model):
        raise FaultSpecError("'model' must be a model name (it matches the request body's \"model\")")
    for name, kind_of in _NUMERIC.items():
        if name in options:
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FaultSpecError(f"'{name}' must be a non-negative number")
            options[name] = kind_of(value)
    if "status" in options and not 100 <= options["status"] <= 599:
        raise FaultSpecError("'status' must be an HTTP status code")
    if "chunk" in options and options["chunk"] < 1:
        raise FaultSpecError("'chunk' must be at least 1 byte")
    if "headers" in options and not isinstance(options["headers"], Mapping):
        raise FaultSpecError("'headers' must be an object")
    return Fault(path.rstrip("/") or "/", kind, count, method.upper() if method else None, options, model)


class FaultTable:
    """The active faults; :meth:`take` consumes one use atomically, so concurrent requests never over-draw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, method: str, path: str, model: str | None = None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, model):
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None


class Wire(Protocol):
    """What a fault may do to the connection. ``sent_status`` is the status line already sent, if any."""

    sent_status: int | None

    def send(self, reply: Reply) -> None: ...
    def send_head(self, status: int, content_type: str, headers: dict[str, str], length: int) -> None: ...
    def write(self, data: bytes) -> None: ...
    def abort(self) -> None: ...


def inject(fault: Fault, wire: Wire, normal: Callable[[], Reply], wait: Callable[[float], bool]) -> None:
    """Answer one request according to ``fault``. ``wait(seconds)`` sleeps and returns True if the server is
    stopping (then the connection is dropped instead of answered)."""
    kind = fault.kind
    if kind == "reset":
        wire.abort()
    elif kind == "timeout":
        if wait(fault.option("delay")):
            wire.abort()
        else:
            wire.send(normal())
    elif kind == "slow_drip":
        _drip(fault, wire, normal(), wait)
    elif kind == "huge_body":
        _stream_huge(fault.option("size"), wire)
    else:
        wire.send(_canned(fault))


def _canned(fault: Fault) -> Reply:
    """The replies that are only a status, headers and body."""
    headers = {str(k): str(v) for k, v in (fault.option("headers") or {}).items()}
    if fault.kind == "malformed_json":
        return Reply(200, b'{"sandbox": true, "status": "OK", "results": [{"name": "Trunc', JSON_TYPE, headers)
    if fault.kind == "wrong_content_type":
        page = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
                "<p>llm-service sandbox: injected HTML error page.</p></body></html>")
        return Reply(fault.option("status"), page.encode("utf-8"), HTML_TYPE, headers)
    status = fault.option("status")
    if fault.kind == "retry_after":
        headers["Retry-After"] = str(fault.option("retry_after"))
        message = "Rate limit exceeded (sandbox fault)"
    else:
        message = f"Injected HTTP {status} (sandbox fault)"
    body = fault.option("body")
    if body is None:
        body = {"error": {"code": status, "message": message}, "sandbox": True}
    if isinstance(body, str):
        return Reply(status, body.encode("utf-8"), fault.option("content_type") or "text/plain; charset=utf-8",
                     headers)
    return Reply(status, encode_json(body), fault.option("content_type") or JSON_TYPE, headers)


def _drip(fault: Fault, wire: Wire, reply: Reply, wait: Callable[[float], bool]) -> None:
    wire.send_head(reply.status, reply.content_type, reply.headers, len(reply.body))
    chunk, interval = fault.option("chunk"), fault.option("interval")
    for start in range(0, len(reply.body), chunk):
        wire.write(reply.body[start:start + chunk])
        if start + chunk < len(reply.body) and wait(interval):
            wire.abort()
            return


def _stream_huge(size: int, wire: Wire) -> None:
    """A valid JSON document strictly larger than ``size`` bytes, streamed so the sandbox never holds it."""
    head, tail = b'{"sandbox": true, "status": "OK", "padding": "', b'"}'
    padding = max(0, size + 1 - len(head) - len(tail))
    wire.send_head(200, JSON_TYPE, {}, len(head) + padding + len(tail))
    wire.write(head)
    block = b"x" * _STREAM_CHUNK
    while padding > 0:
        piece = block if padding >= _STREAM_CHUNK else block[:padding]
        wire.write(piece)
        padding -= len(piece)
    wire.write(tail)

