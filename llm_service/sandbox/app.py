"""Routing and the per-request pipeline: count and log, simulated latency, faults, then the fake endpoint.

Admin requests (``/_sandbox/...``) skip the pipeline, so inspecting the sandbox never changes its counters and is
never slowed down or broken by the faults under test.
"""
from __future__ import annotations

from typing import Any, Callable

from . import chat, places, weather, webhooks
from .faults import FaultSpecError, Wire, inject, parse_fault
from .messages import Reply, Request, method_not_allowed, not_found
from .state import SandboxState

Endpoint = Callable[[Request], Reply]

UPSTREAM_ROUTES: dict[str, tuple[tuple[str, ...], Endpoint]] = {
    "/weatherapi/v1/current.json": (("GET",), weather.current),
    "/places/nearbysearch/json": (("GET",), places.nearby_search),
    "/places/textsearch/json": (("GET",), places.text_search),
    "/places/details/json": (("GET",), places.details),
    "/openai/v1/chat/completions": (("POST",), chat.completions),
    "/openai/v1/models": (("GET",), chat.models),
}
WEBHOOK_PREFIX = "/webhooks/"
ADMIN_PREFIX = "/_sandbox"


class SandboxApp:
    def __init__(self, state: SandboxState, log: Callable[[str], None] | None = None) -> None:
        self.state = state
        self._log = log  # None = quiet

    def wait(self, seconds: float) -> bool:
        """Sleep in the handler thread; True when the server is stopping (so the caller gives up)."""
        return seconds > 0 and self.state.stopping.wait(seconds)

    def handle(self, request: Request, wire: Wire, connection_id: int | None = None) -> None:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            wire.send(self.admin(request))
            return
        entry = self.state.begin_request(request.method, request.path, request.query, request.json(),
                                         connection_id)
        try:
            if self.wait(self.state.settings.latency_ms / 1000.0):
                wire.abort()
                return
            body = request.json()
            model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
            fault = self.state.faults.take(request.method, request.path, model)
            if fault is None:
                wire.send(self.route(request))
                return
            self.state.note_fault(entry, fault.kind)
            if self._log:
                self._log(f"[sandbox] injecting fault {fault.kind} on {request.method} {request.path}")
            inject(fault, wire, lambda: self.route(request), self.wait)
        finally:
            self.state.end_request(entry, wire.sent_status)

    def route(self, request: Request) -> Reply:
        if request.path.startswith(WEBHOOK_PREFIX):
            if request.method != "POST":
                return method_not_allowed(request.method, ("POST",))
            return self.receive_webhook(request.path[len(WEBHOOK_PREFIX):], request)
        route = UPSTREAM_ROUTES.get(request.path)
        if route is None:
            return not_found(request.path)
        methods, endpoint = route
        if request.method not in methods:
            return method_not_allowed(request.method, methods)
        return endpoint(request)

    def receive_webhook(self, name: str, request: Request) -> Reply:
        settings = self.state.settings
        delivery = webhooks.build_delivery(name, request, settings.webhook_secret, settings.webhook_status)
        self.state.record_webhook(delivery)
        if self._log:
            self._log(webhooks.describe(delivery))
        return webhooks.response(settings.webhook_status)

    # -- admin ------------------------------------------------------------------------------------------------
    def admin(self, request: Request) -> Reply:
        action = request.path[len(ADMIN_PREFIX):].strip("/")
        handlers: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("GET", "health"): lambda r: {"status": "ok", "sandbox": True},
            ("GET", "stats"): lambda r: self.state.stats(),
            ("POST", "reset"): self._reset,
            ("GET", "config"): lambda r: self.state.settings.public(),
            ("POST", "config"): self._configure,
            ("GET", "requests"): lambda r: {"requests": self.state.requests()},
            ("GET", "webhooks"): self._webhooks,
            ("GET", "faults"): lambda r: {"faults": self.state.faults.snapshot()},
            ("POST", "faults"): self._add_faults,
            ("DELETE", "faults"): self._clear_faults,
        }
        handler = handlers.get((request.method, action))
        if handler is None:
            allowed = tuple(method for method, name in handlers if name == action)
            return method_not_allowed(request.method, allowed) if allowed else not_found(request.path)
        try:
            result = handler(request)
        except (ValueError, FaultSpecError) as exc:
            return Reply.json(400, {"error": {"message": str(exc)}, "sandbox": True})
        return result if isinstance(result, Reply) else Reply.json(200, result)

    def _reset(self, request: Request) -> dict:
        self.state.reset()
        return {"status": "reset"}

    def _configure(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict):
            raise ValueError("Expected a JSON object of settings")
        return self.state.configure(**body).public()

    def _webhooks(self, request: Request) -> dict:
        name = request.query.get("name")
        deliveries = self.state.webhooks()
        return {"webhooks": [d for d in deliveries if name is None or d["name"] == name]}

    def _add_faults(self, request: Request) -> dict:
        body = request.json()
        specs = body.get("faults", body) if isinstance(body, dict) else body
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list) or not specs:
            raise ValueError("Expected {\"faults\": [{\"path\": ..., \"kind\": ...}, ...]}")
        parsed = [parse_fault(spec) for spec in specs]  # all or nothing
        for fault in parsed:
            self.state.faults.add(fault)
        return {"faults": self.state.faults.snapshot()}

    def _clear_faults(self, request: Request) -> dict:
        self.state.faults.clear()
        return {"faults": []}
