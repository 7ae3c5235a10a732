"""Failing open on Redis errors without stalling every call or flooding the log.

The cache and the rate limiter are conveniences: when Redis is down a workflow must still run (a cache miss, an
allowed call). Two things make that bearable in production. First, a failed Redis command can take seconds (connect
timeout times the client's retries), so after one failure the guard skips Redis for a short cool-down instead of
paying that price on every step. Second, the warning is logged at most once per interval, with a count of the ones
held back, instead of once per call.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, TypeVar

from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from llm_service.redaction import redact_text

# What "Redis is unavailable" looks like: the client's own errors and raw socket errors it lets through.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)

T = TypeVar("T")


class FailOpenGuard:
    def __init__(self, logger: logging.Logger, component: str, consequence: str, *, cooldown: float = 5.0,
                 warn_interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._component = component
        self._consequence = consequence
        self._cooldown = cooldown
        self._warn_interval = warn_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._skip_until = float("-inf")
        self._last_warning: float | None = None
        self._suppressed = 0
        self._failing = False

    def call(self, action: str, operation: Callable[[], T], default: T) -> T:
        """Run one Redis operation; on a Redis error (or during the cool-down) return ``default`` instead."""
        if not self.available():
            return default
        try:
            result = operation()
        except REDIS_ERRORS as exc:
            self.failed(action, exc)
            return default
        self.succeeded()
        return result

    def available(self) -> bool:
        """False during the cool-down after a failure: the caller fails open without trying Redis."""
        with self._lock:
            return self._clock() >= self._skip_until

    def failed(self, action: str, exc: BaseException) -> None:
        with self._lock:
            now = self._clock()
            self._skip_until = now + self._cooldown
            self._failing = True
            if self._last_warning is not None and now - self._last_warning < self._warn_interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_warning = self._suppressed, 0, now
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        more = f" ({suppressed} similar warnings suppressed)" if suppressed else ""
        self._logger.warning("Redis unavailable during %s; the %s fails open (%s): %s%s", action, self._component,
                             self._consequence, detail, more)

    def succeeded(self) -> None:
        """Note recovery once, so the log shows when the degraded period ended."""
        with self._lock:
            if not self._failing:
                return
            self._failing = False
        self._logger.info("Redis reachable again; the %s is back to normal", self._component)


def redis_reachable(redis_client: Any, timeout: float = 0.5) -> bool:
    """PING on a throw-away connection with a short timeout and no retries.

    The client's own pool may be configured with long timeouts and retries (seconds before an answer); the CLI only
    needs a quick yes/no to choose between Redis and the in-process fallback.
    """
    if redis_client is None:
        return False
    pool = getattr(redis_client, "connection_pool", None)
    try:
        if pool is None:
            return bool(redis_client.ping())
        kwargs = dict(pool.connection_kwargs)
        kwargs.update(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
        connection = pool.connection_class(**kwargs)
        try:
            connection.connect()
            connection.send_command("PING")
            reply = connection.read_response()
        finally:
            connection.disconnect()
    except REDIS_ERRORS:
        return False
    return reply in (b"PONG", "PONG", True)
