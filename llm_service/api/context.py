"""The collaborators one app instance works with, kept on ``app.extensions`` (no module-level globals, so tests can
run several apps side by side)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

from ..config import Config
from ..jobs.queue import JobQueue
from ..services import Services

if TYPE_CHECKING:
    from .health import HealthChecker
    from .limits import SubmitLimiter

EXTENSION = "llm_service"


@dataclass
class ApiContext:
    config: Config
    services: Services
    queue: JobQueue
    submit_limiter: SubmitLimiter | None
    health: HealthChecker
    openapi: dict | None = None  # built on first request, from the registered routes
    _stream_redis: Any = None
    _stream_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> Any:
        return self.services.store

    def stream_redis(self) -> Any:
        """The Redis client of the event streams: each open stream's blocking read holds a connection, so they get
        their own pool (EVENTS_MAX_STREAMS), apart from the short requests' pool, and cannot starve it."""
        with self._stream_lock:
            if self._stream_redis is None:
                from ..services import make_redis

                self._stream_redis = make_redis(self.config, max_connections=self.config.events_max_streams)
            return self._stream_redis


def api_context() -> ApiContext:
    return current_app.extensions[EXTENSION]
