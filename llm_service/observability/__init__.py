"""Prometheus metrics and structured step/upstream log events, for the worker and the API.

* Worker: :func:`worker_observer` (given to the engine), :func:`worker_metrics` (the runtime's job, webhook and
  recovery hooks) and :func:`start_worker_metrics_server` (``/metrics`` on ``WORKER_METRICS_PORT``).
* API: :class:`ApiMetrics` plus the same :class:`StoreCollector`, wired in ``llm_service.api.metrics``.

Every registry is a dedicated ``CollectorRegistry`` (never prometheus_client's global one).
"""
from __future__ import annotations

from .collectors import StoreCollector, broker_redis, queue_keys
from .metrics import ApiMetrics, WorkerMetrics, new_registry, render, upstream_outcome
from .observer import MetricsObserver
from .worker import start_worker_metrics_server, worker_metrics, worker_observer

__all__ = ["ApiMetrics", "MetricsObserver", "StoreCollector", "WorkerMetrics", "broker_redis", "new_registry",
           "queue_keys", "render", "start_worker_metrics_server", "upstream_outcome", "worker_metrics",
           "worker_observer"]
