"""The collaborators one app instance works with, kept on ``app.extensions`` (no module-level globals, so tests can
run several apps side by side)."""
from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def store(self) -> Any:
        return self.services.store


def api_context() -> ApiContext:
    return current_app.extensions[EXTENSION]
