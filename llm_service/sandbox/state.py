"""Everything the sandbox remembers: settings, counters, recent requests, webhook deliveries and faults.

One lock guards it all; handler threads only hold it for a counter bump or a list append, so it never serialises
the simulated latency. ``reset`` returns to the state the server was created with, so tests can share a server.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from ..redaction import REDACTED, is_secret_key
from .faults import FaultTable

REQUEST_LOG_SIZE = 500
WEBHOOK_LOG_SIZE = 500


@dataclass(frozen=True)
class Settings:
    latency_ms: float = 0.0
    webhook_status: int = 200
    webhook_secret: str | None = None

    def public(self) -> dict[str, Any]:
        """Settings as the admin API shows them: whether a secret is set, never the secret itself."""
        return {"latency_ms": self.latency_ms, "webhook_status": self.webhook_status,
                "webhook_secret_configured": self.webhook_secret is not None}


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a settings update (admin API or Python API); raises ValueError naming the bad field."""
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "latency_ms":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError("'latency_ms' must be a non-negative number")
            clean[name] = float(value)
        elif name == "webhook_status":
            if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
                raise ValueError("'webhook_status' must be an HTTP status code")
            clean[name] = value
        elif name == "webhook_secret":
            if value is not None and not isinstance(value, str):
                raise ValueError("'webhook_secret' must be a string or null")
            clean[name] = value.strip() if isinstance(value, str) and value.strip() else None
        else:
            raise ValueError(f"Unknown setting '{name}'")
    return clean


def redact_query(query: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if is_secret_key(name) else value for name, value in query.items()}


class SandboxState:
    def __init__(self, settings: Settings) -> None:
        self._initial = settings
        self._settings = settings
        self._lock = threading.Lock()
        self.faults = FaultTable()
        self.stopping = threading.Event()
        self._next_connection_id = 0
        self._zero_counters()

    def _zero_counters(self) -> None:
        self._requests = 0
        self._connections = 0
        self._by_path: collections.Counter[str] = collections.Counter()
        self._faults_injected = 0
        self._webhooks_received = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._seq = 0
        self._request_log: collections.deque[dict] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._webhooks: collections.deque[dict] = collections.deque(maxlen=WEBHOOK_LOG_SIZE)

    # -- settings ---------------------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._settings

    def configure(self, **changes: Any) -> Settings:
        clean = validate_changes(changes)
        with self._lock:
            self._settings = dataclasses.replace(self._settings, **clean)
            return self._settings

    def reset(self) -> None:
        """Back to the settings the server started with; counters, logs and faults emptied."""
        with self._lock:
            self._settings = self._initial
            self._zero_counters()
        self.faults.clear()

    # -- counters -----------------------------------------------------------------------------------------------
    def connection_opened(self) -> int:
        with self._lock:
            self._connections += 1
            self._next_connection_id += 1
            return self._next_connection_id

    def begin_request(self, method: str, path: str, query: Mapping[str, str], body_json: Any,
                      connection_id: int | None) -> dict:
        """Count a fake-upstream request and log it; the returned entry is completed by :meth:`end_request`."""
        with self._lock:
            self._seq += 1
            self._requests += 1
            self._by_path[path] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            entry = {"seq": self._seq, "time": _now(), "method": method, "path": path,
                     "query": redact_query(query), "json": body_json if method != "GET" else None,
                     "connection": connection_id, "status": None, "fault": None}
            self._request_log.append(entry)
            return entry

    def note_fault(self, entry: dict, kind: str) -> None:
        with self._lock:
            entry["fault"] = kind
            self._faults_injected += 1

    def end_request(self, entry: dict, status: int | None) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)  # a reset may have zeroed it meanwhile
            entry["status"] = status

    def record_webhook(self, delivery: dict) -> None:
        with self._lock:
            self._webhooks_received += 1
            self._webhooks.append(delivery)

    # -- views ----------------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests, "connections_opened": self._connections,
                    "by_path": dict(self._by_path), "faults_injected": self._faults_injected,
                    "in_flight": self._in_flight, "max_in_flight": self._max_in_flight,
                    "webhooks_received": self._webhooks_received}

    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self._request_log]

    def webhooks(self) -> list[dict]:
        with self._lock:
            return [dict(delivery) for delivery in self._webhooks]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
