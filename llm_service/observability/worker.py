"""The worker process's metrics: one registry per process, the engine observer, and the ``/metrics`` server.

The registry is created here and only here (:func:`worker_metrics`), so the observer the engine is built with, the
runtime's job/webhook hooks and the HTTP server all see the same counters.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import start_http_server

from ..config import Config
from ..logs import event
from .collectors import StoreCollector
from .metrics import WorkerMetrics
from .observer import MetricsObserver

log = logging.getLogger("llm_service.worker")

LISTEN_ADDRESS = "0.0.0.0"

_lock = threading.Lock()
_metrics: WorkerMetrics | None = None
_server: Any | None = None


def worker_metrics() -> WorkerMetrics:
    """This process's worker metrics (created on first use)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = WorkerMetrics()
        return _metrics


def worker_observer() -> MetricsObserver:
    return MetricsObserver(worker_metrics())


def start_worker_metrics_server(config: Config, *, services: Any | None = None,
                                metrics: WorkerMetrics | None = None) -> Any | None:
    """Serve ``/metrics`` on ``WORKER_METRICS_PORT`` (0 = off) from a daemon thread; returns the server.

    The thread is a green thread under eventlet/gevent monkey-patching (the server's sockets are patched too), so
    it never blocks the pool. ``services`` defaults to the installed runtime's (for the job-store gauges). Starting
    twice returns the running server; a port already in use is logged and the worker carries on without metrics
    rather than failing to start.
    """
    global _server
    if not config.worker_metrics_port:
        return None
    with _lock:
        if _server is not None:
            return _server
    metrics = metrics or worker_metrics()
    if services is None:
        from ..tasks.runtime import current_runtime

        services = current_runtime().services
    try:
        server, _ = start_http_server(config.worker_metrics_port, addr=LISTEN_ADDRESS, registry=metrics.registry)
    except OSError as exc:
        log.error("worker metrics server not started on port %s: %s", config.worker_metrics_port, exc,
                  extra={"event": "metrics.server_failed", "port": config.worker_metrics_port})
        return None
    metrics.registry.register(StoreCollector.for_services(config, services))
    with _lock:
        _server = server
    event(log, "metrics.listening", port=server.server_port)
    return server
