"""The API's Prometheus metrics: request hooks on the app, and the body ``GET /metrics`` answers with.

Each app gets its own registry (kept on ``app.extensions`` like the rest of its collaborators), holding the
request/submission counters and the scrape-time job-store gauges shared with the worker.

Under gunicorn several processes serve the API, each counting only its own requests; a scrape reaches one of them,
so the counters Prometheus saw jumped between processes' values (and looked like resets). ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start: prometheus_client then keeps every process's values in files
there, and ``/metrics`` answers with their sum (``MultiProcessCollector``) plus the job-store gauges, read once.
"""
from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, request
from prometheus_client.multiprocess import MultiProcessCollector

from ..config import Config
from ..observability import ApiMetrics, StoreCollector, new_registry, render
from ..services import Services

EXTENSION = "llm_service.metrics"
EXPOSED = "llm_service.metrics.exposed"  # the registry /metrics renders


def install_metrics(app: Flask, config: Config, services: Services) -> ApiMetrics:
    """Count every request (also refused and failed ones: error handlers produce a response the hooks see)."""
    from .routes.workflows import (
        submit_workflow,  # the routes import this module (for the /metrics view)
    )

    metrics = ApiMetrics()
    exposed = metrics.registry
    if config.prometheus_multiproc_dir:
        exposed = new_registry()
        MultiProcessCollector(exposed, path=config.prometheus_multiproc_dir)
    exposed.register(StoreCollector.for_services(config, services))
    app.extensions[EXTENSION] = metrics
    app.extensions[EXPOSED] = exposed
    submit_endpoints = {name for name, view in app.view_functions.items() if view is submit_workflow}

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.get("metrics_started")
        metrics.request(endpoint=request.endpoint, method=request.method, status=response.status_code,
                        seconds=None if started is None else time.perf_counter() - started,
                        submission=request.endpoint in submit_endpoints)
        return response

    return metrics


def metrics_response() -> Response:
    body, content_type = render(current_app.extensions[EXPOSED])
    return Response(body, content_type=content_type)
