"""Gauges read from Redis at scrape time: jobs per status (the job store) and messages waiting in the broker.

Both API and worker expose them, so the numbers are there whichever process Prometheus scrapes (they describe the
whole deployment, not one process: aggregate with ``max``, not ``sum``). A scrape must never fail because Redis
is down: the affected series are left out, ``llm_job_store_up``/``llm_broker_up`` read 0, and the outage is
logged once when it starts (and once when it ends), not on every scrape.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily

from ..config import Config

log = logging.getLogger("llm_service.observability")

# The Celery app's broker_transport_options: "sep" and "priority_steps" (llm_service.tasks.celery_app). Kombu's
# Redis transport keeps priority 0 in the list named after the queue and priority n in "<queue><sep><n>"
# (Channel._q_for_pri); tests publish through the real Celery app to prove these keys match.
QUEUE_SEP = ":"
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def queue_keys(queue: str, priority_steps: Sequence[int] | None = None) -> list[str]:
    if priority_steps is None:
        from ..tasks.celery_app import PRIORITY_STEPS

        priority_steps = PRIORITY_STEPS
    return [f"{queue}{QUEUE_SEP}{p}" if p else queue for p in priority_steps]


def broker_redis(config: Config, store_redis: Any | None) -> Any | None:
    """A Redis client for the broker: the store's own when both URLs are the same, a small separate pool when the
    broker is another Redis, ``None`` when the broker is not Redis (no queue depth then)."""
    url = config.effective_broker_url
    if url == config.redis_url:
        return store_redis
    if url.split("://", 1)[0].lower() not in _REDIS_SCHEMES:
        return None
    from ..services import make_redis

    return make_redis(config, url=url, max_connections=2)


class _OutageLog:
    """Logs the first failure of a source and its recovery, nothing in between."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            log.warning("metrics: %s unreachable (%s); its gauges are left out until it answers", self.source,
                        type(exc).__name__, extra={"event": "metrics.source_down", "source": self.source})

    def answered(self) -> None:
        if self.failing:
            self.failing = False
            log.info("metrics: %s answers again", self.source,
                     extra={"event": "metrics.source_up", "source": self.source})


class StoreCollector:
    """``llm_jobs_by_status{status}``, ``llm_queue_depth`` and the two ``*_up`` gauges, computed per scrape."""

    def __init__(self, store: Any, *, broker: Any | None = None, queue: str = "celery",
                 priority_steps: Sequence[int] | None = None) -> None:
        self.store = store
        self.broker = broker
        self.keys = queue_keys(queue, priority_steps) if broker is not None else []
        self._store_log = _OutageLog("job store")
        self._broker_log = _OutageLog("broker")

    @classmethod
    def for_services(cls, config: Config, services: Any) -> "StoreCollector":
        return cls(services.store, broker=broker_redis(config, services.redis), queue=config.celery_queue)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._families(scrape=True)
        except Exception:  # a scrape must answer whatever happens here
            log.warning("metrics: the job store collector failed", exc_info=True)

    def _families(self, scrape: bool = False) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("llm_jobs_by_status", "Jobs in the store per status (retention window)",
                                      labels=["status"])
        store_up = GaugeMetricFamily("llm_job_store_up", "1 when the job store answered this scrape")
        depth = GaugeMetricFamily("llm_queue_depth", "Messages waiting in the Celery queue (all priorities)")
        broker_up = GaugeMetricFamily("llm_broker_up", "1 when the broker's Redis answered this scrape")
        if scrape:
            counts = self._read(self._store_log, self.store.count_by_status)
            store_up.add_metric([], 0 if counts is None else 1)
            for status, count in (counts or {}).items():
                by_status.add_metric([status], count)
        yield from (by_status, store_up)
        if self.broker is None:
            return
        if scrape:
            waiting = self._read(self._broker_log, self._queue_depth)
            broker_up.add_metric([], 0 if waiting is None else 1)
            if waiting is not None:
                depth.add_metric([], waiting)
        yield from (depth, broker_up)

    def _queue_depth(self) -> int:
        pipe = self.broker.pipeline(transaction=False)
        for key in self.keys:
            pipe.llen(key)
        return sum(int(n) for n in pipe.execute())

    @staticmethod
    def _read(outage: _OutageLog, fn: Any) -> Any:
        try:
            value = fn()
        except Exception as exc:
            outage.failed(exc)
            return None
        outage.answered()
        return value
