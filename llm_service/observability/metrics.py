"""Metric definitions for the worker and the API, each set on its own :class:`CollectorRegistry`.

Nothing here touches prometheus_client's global default registry: a process creates its registry in one place
(:func:`llm_service.observability.worker.worker_metrics` for the worker, the app factory for the API) and tests
build fresh ones, so two apps or two test cases never share counters.

Label values are always bounded vocabularies (step types, service and operation names from the definitions,
status classes, outcome names): never job ids, user ids, URLs or input data, which would both leak data and
explode the number of series.
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Any, Callable, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger("llm_service.observability")

# Steps range from a template transform (microseconds) to an LLM call or a fan-out (minutes).
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

JOB_OUTCOMES = ("completed", "failed", "cancelled", "discarded")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")
_MAX_LABEL = 64

F = TypeVar("F", bound=Callable[..., Any])


def new_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its content type, for any HTTP layer to send."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def label(value: Any, default: str = "unknown") -> str:
    """A label value that is short and made of safe characters, whatever a definition or an error put there."""
    text = default if value is None or value == "" else str(value)
    return _UNSAFE.sub("_", text)[:_MAX_LABEL]


def status_class(status: int) -> str:
    return f"{int(status) // 100}xx"


def upstream_outcome(*, status: int | None, cached: bool, error_type: str | None) -> str:
    """``cache_hit``, the HTTP status class (``2xx``/``4xx``/``5xx``), or ``error:<type>`` when no HTTP error
    status explains the failure (timeouts, refused connections, a 200 whose body was unusable)."""
    if cached:
        return "cache_hit"
    if error_type and (status is None or int(status) < 400):
        return f"error:{label(error_type)}"
    if status is not None:
        return status_class(status)
    return "unknown"


_warned: set[str] = set()


def never_raises(method: F) -> F:
    """Metrics and log hooks run inside job execution: a bug in them must cost a log line, never a job.
    The first failure of each hook is logged with its traceback, later ones are silent."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception:
            name = method.__qualname__
            if name not in _warned:
                _warned.add(name)
                log.warning("observability hook %s failed; further failures are not logged", name, exc_info=True)
            return None
    return wrapper  # type: ignore[return-value]


class WorkerMetrics:
    """What a worker process counts: job outcomes, steps, upstream calls, webhooks and crash recoveries.

    The runtime calls the ``job_*``/``webhook_*`` hooks; :class:`MetricsObserver` records steps and upstream calls.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.jobs = Counter("llm_jobs", "Jobs this worker finished, by final status (discarded: the job was "
                            "recovered or deleted elsewhere while running, so its result was dropped)",
                            ["status"], registry=r)
        self.in_progress = Gauge("llm_jobs_in_progress", "Jobs running in this worker process now", registry=r)
        self.step_duration = Histogram("llm_step_duration_seconds", "Step duration (including retries)",
                                       ["step_type", "success"], buckets=STEP_BUCKETS, registry=r)
        self.upstream_duration = Histogram(
            "llm_upstream_request_duration_seconds",
            "External API calls by outcome: status class, error:<type>, or cache_hit",
            ["service", "operation", "outcome"], buckets=UPSTREAM_BUCKETS, registry=r)
        self.upstream_cache = Counter(
            "llm_upstream_cache", "External API results served from the cache (hit) or fetched upstream (miss; "
            "includes steps with caching disabled). Hit rate = hit / (hit + miss)",
            ["service", "result"], registry=r)
        self.webhooks = Counter("llm_webhook_deliveries", "Webhook delivery attempts by outcome (delivered, retry, "
                                "permanently_failed_now, or why nothing was sent)", ["outcome"], registry=r)
        self.recoveries = Counter("llm_job_recoveries", "Jobs taken back from a dead worker by the sweeper, by "
                                  "what happened to them (requeued, failed, cancelled)", ["outcome"], registry=r)
        for status in JOB_OUTCOMES:
            self.jobs.labels(status=status)

    # -- runtime hooks ------------------------------------------------------------------------------------------

    @never_raises
    def job_started(self) -> None:
        self.in_progress.inc()

    @never_raises
    def job_stopped(self) -> None:
        """The job left this process, however it ended (also after an unexpected exception)."""
        self.in_progress.dec()

    @never_raises
    def job_finished(self, status: str) -> None:
        self.jobs.labels(status=label(status)).inc()

    @never_raises
    def webhook_delivery(self, outcome: str) -> None:
        self.webhooks.labels(outcome=label(outcome)).inc()

    @never_raises
    def job_recovered(self, outcome: str) -> None:
        self.recoveries.labels(outcome=label(outcome)).inc()

    # -- engine hooks (through MetricsObserver) -----------------------------------------------------------------

    def step(self, *, step_type: str, success: bool, seconds: float) -> None:
        self.step_duration.labels(step_type=label(step_type), success="true" if success else "false") \
            .observe(max(0.0, seconds))

    def upstream(self, *, service: str, operation: str, outcome: str, seconds: float, cached: bool) -> None:
        service = label(service)
        self.upstream_duration.labels(service=service, operation=label(operation), outcome=outcome) \
            .observe(max(0.0, seconds))
        self.upstream_cache.labels(service=service, result="hit" if cached else "miss").inc()


_SUBMISSION_OUTCOMES = {202: "accepted", 429: "rate_limited", 503: "unavailable"}
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class ApiMetrics:
    """What an API process counts: requests by endpoint and status, their latency, and job submissions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.requests = Counter("llm_api_requests", "HTTP requests by endpoint (Flask endpoint name; "
                                "'unmatched' for unknown URLs), method and status", ["endpoint", "method", "status"],
                                registry=r)
        self.latency = Histogram("llm_api_request_duration_seconds", "HTTP request latency",
                                 ["endpoint", "method", "status"], buckets=REQUEST_BUCKETS, registry=r)
        self.submissions = Counter("llm_api_job_submissions", "Job submissions by outcome (accepted, rejected, "
                                   "rate_limited, unavailable, error)", ["outcome"], registry=r)

    @never_raises
    def request(self, *, endpoint: str | None, method: str, status: int, seconds: float | None,
                submission: bool) -> None:
        labels = {"endpoint": label(endpoint, "unmatched"), "method": method if method in _METHODS else "other",
                  "status": str(int(status))}
        self.requests.labels(**labels).inc()
        if seconds is not None:
            self.latency.labels(**labels).observe(max(0.0, seconds))
        if submission:
            self.submissions.labels(outcome=submission_outcome(status)).inc()


def submission_outcome(status: int) -> str:
    if status in _SUBMISSION_OUTCOMES:
        return _SUBMISSION_OUTCOMES[status]
    return "rejected" if 400 <= status < 500 else "error"
