"""The HTTP API (Flask): ``create_app`` builds one app from a Config, the shared Services and a JobQueue.

Production: ``gunicorn wsgi:app`` (``wsgi.py`` and ``gunicorn.conf.py`` at the repository root).
"""
from __future__ import annotations

import logging

from flask import Flask

from ..config import Config
from ..jobs.queue import JobQueue
from ..services import Services, build
from .context import EXTENSION, ApiContext
from .cors import install_cors
from .errors import register_error_handlers
from .health import HealthChecker
from .limits import make_submit_limiter
from .metrics import install_metrics
from .queueing import UnavailableQueue
from .routes import register_routes

log = logging.getLogger("llm_service.api")

__all__ = ["create_app"]


def _default_queue(config: Config) -> JobQueue:
    """The Celery-backed queue, imported lazily so the API (and its tests) work without the worker's code."""
    try:
        from ..tasks.celery_app import make_celery
        from ..tasks.queue import CeleryJobQueue
    except ImportError as exc:
        log.warning("Celery queue unavailable (%s): submissions will answer 503", exc)
        return UnavailableQueue(f"the Celery queue could not be loaded: {exc}")
    return CeleryJobQueue(make_celery(config), direct=True, store_redis_url=config.redis_url)


def create_app(config: Config | None = None, *, services: Services | None = None,
               queue: JobQueue | None = None) -> Flask:
    """Build the app. ``config`` defaults to ``services.config`` or the environment; ``services`` to
    ``services.build(config)``; ``queue`` to the Celery queue."""
    if config is None:
        config = services.config if services is not None else Config.from_env()
    if services is None:
        services = build(config, redis_mode="required")
    if queue is None:
        queue = _default_queue(config)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_content_length
    app.json.sort_keys = False  # keep the documented key order
    app.extensions[EXTENSION] = ApiContext(
        config=config, services=services, queue=queue,
        submit_limiter=make_submit_limiter(services.redis, config),
        health=HealthChecker(services.redis, prefix=config.redis_key_prefix, version=config.api_version))
    register_error_handlers(app)
    install_cors(app, tuple(config.cors_origins))
    register_routes(app)
    install_metrics(app, config, services)
    return app
