"""The API's Prometheus metrics: request hooks on the app, and the body ``GET /metrics`` answers with.

Each app gets its own registry (kept on ``app.extensions`` like the rest of its collaborators), holding the
request/submission counters and the scrape-time job-store gauges shared with the worker.
"""
from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, request

from ..config import Config
from ..observability import ApiMetrics, StoreCollector, render
from ..services import Services

EXTENSION = "llm_service.metrics"


def install_metrics(app: Flask, config: Config, services: Services) -> ApiMetrics:
    """Count every request (also refused and failed ones: error handlers produce a response the hooks see)."""
    from .routes.workflows import (
        submit_workflow,  # the routes import this module (for the /metrics view)
    )

    metrics = ApiMetrics()
    metrics.registry.register(StoreCollector.for_services(config, services))
    app.extensions[EXTENSION] = metrics
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
    body, content_type = render(current_app.extensions[EXTENSION].registry)
    return Response(body, content_type=content_type)
