"""``GET /health``: one Redis round trip, bounded to about a second, answers both questions.

The workers publish heartbeat keys with a TTL (``jobs/presence.py``); reading them tells whether Redis (the job
store) answers and how many workers are alive, so the answer takes milliseconds instead of waiting out a broker
ping's reply timeout. The job store's own client waits up to 10 s for Redis (right for job writes, wrong for a probe
that load balancers call often), so the read goes through a separate small client on the same server with 1 s
timeouts and no retries.
"""
from __future__ import annotations

import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..jobs.presence import WorkerPresence
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


def _short(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class HealthChecker:
    def __init__(self, redis_client: Any | None, *, prefix: str, version: str) -> None:
        self._probe = probe_client(redis_client)
        self._presence = WorkerPresence(prefix)
        self._version = version

    def services(self) -> dict:
        """``redis`` and ``database`` (the job store, which is Redis: the same check under the name the old
        service's clients read) and ``celery`` (workers whose heartbeat is live)."""
        if self._probe is None:
            store = {"status": "unhealthy", "error": "Redis is not configured (REDIS_URL)"}
            return {"redis": store, "database": dict(store), "celery": {"status": "unavailable"}}
        try:
            workers = len(self._presence.live(self._probe))
        except (redis.RedisError, OSError) as exc:
            store = {"status": "unhealthy", "error": _short(exc)}
            return {"redis": store, "database": dict(store), "celery": {"status": "unavailable"}}
        celery = {"status": "healthy", "workers": workers} if workers else {"status": "no_workers", "workers": 0}
        return {"redis": {"status": "healthy"}, "database": {"status": "healthy"}, "celery": celery}

    def report(self) -> tuple[dict, int]:
        """The body and its HTTP status: 503 when Redis (the job store) is down, else 200."""
        services = self.services()
        if services["redis"]["status"] != "healthy":
            overall, status = "unhealthy", 503
        elif services["celery"]["status"] != "healthy":
            overall, status = "degraded", 200
        else:
            overall, status = "healthy", 200
        return {"status": overall, "services": services, "version": self._version,
                "timestamp": epoch_to_iso(time.time())}, status
