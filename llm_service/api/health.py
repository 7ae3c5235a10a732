"""``GET /health``: a Redis PING and a worker ping, each bounded to about a second.

The job store's own client waits up to 10 s for Redis (right for job writes, wrong for a health probe that load
balancers call often), so PING goes through a separate small client on the same server with 1 s timeouts and no
retries. The worker ping is the queue's ``workers(timeout=1.0)``, but a broker that is down can make it block far
longer while the client reconnects; it therefore runs in a background thread that the request waits for only
briefly, and concurrent health requests share the one ping in flight instead of starting more.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..jobs.queue import JobQueue
from ..jobs.timeutil import epoch_to_iso
from ..redaction import redact_text

PROBE_TIMEOUT = 1.0
# Connection settings that identify the server and the credentials; everything else (pool state, retries,
# timeouts) is chosen here.
_IDENTITY = ("host", "port", "path", "db", "username", "password", "credential_provider", "protocol")


def probe_client(client: Any | None) -> Any | None:
    """A client for the same Redis server as ``client`` with short timeouts, or None without Redis."""
    if client is None:
        return None
    pool = client.connection_pool
    kwargs = {key: value for key, value in pool.connection_kwargs.items()
              if key in _IDENTITY or key.startswith("ssl")}
    kwargs.update(socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT, retry=Retry(NoBackoff(), 0))
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


class _Outcome:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None


class SharedProbe:
    """Runs ``probe`` in a daemon thread, at most one at a time: callers that arrive while it runs share it. Each
    caller waits up to ``wait`` seconds and gets ``timed_out`` when it has not finished by then (or raised)."""

    def __init__(self, probe: Callable[[], Any], *, wait: float, timed_out: Any) -> None:
        self._probe = probe
        self._wait = wait
        self._timed_out = timed_out
        self._lock = threading.Lock()
        self._current: _Outcome | None = None

    def __call__(self) -> Any:
        with self._lock:
            outcome = self._current
            if outcome is None:
                outcome = self._current = _Outcome()
                threading.Thread(target=self._run, args=(outcome,), name="health-probe", daemon=True).start()
        if not outcome.done.wait(self._wait):
            return self._timed_out
        return outcome.value

    def _run(self, outcome: _Outcome) -> None:
        try:
            outcome.value = self._probe()
        except Exception:  # the probe must answer even when the broker client misbehaves
            outcome.value = self._timed_out
        finally:
            with self._lock:
                self._current = None
            outcome.done.set()


def _short(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class HealthChecker:
    def __init__(self, redis_client: Any | None, queue: JobQueue, *, version: str) -> None:
        self._probe = probe_client(redis_client)
        self._workers = SharedProbe(lambda: queue.workers(timeout=PROBE_TIMEOUT), wait=PROBE_TIMEOUT + 0.5,
                                    timed_out=None)
        self._version = version

    def redis(self) -> dict:
        if self._probe is None:
            return {"status": "unhealthy", "error": "Redis is not configured (REDIS_URL)"}
        try:
            self._probe.ping()
        except (redis.RedisError, OSError) as exc:
            return {"status": "unhealthy", "error": _short(exc)}
        return {"status": "healthy"}

    def celery(self) -> dict:
        workers = self._workers()
        if workers is None:
            return {"status": "unavailable"}
        if workers == 0:
            return {"status": "no_workers", "workers": 0}
        return {"status": "healthy", "workers": int(workers)}

    def report(self) -> tuple[dict, int]:
        """The body and its HTTP status: 503 when Redis (the job store) is down, else 200."""
        services = {"redis": self.redis(), "celery": self.celery()}
        if services["redis"]["status"] != "healthy":
            overall, status = "unhealthy", 503
        elif services["celery"]["status"] != "healthy":
            overall, status = "degraded", 200
        else:
            overall, status = "healthy", 200
        return {"status": overall, "services": services, "version": self._version,
                "timestamp": epoch_to_iso(time.time())}, status
