"""What both limiters share: the keys, the limits, retry-after, fail-open, and giving a slot back.

Each allowed call is one member in a sliding window per service (``<prefix>:rate_limit:global:<service>``) and per
user (``<prefix>:rate_limit:user:<service>:<user_id>``). Only windows with a limit take part: a limit of 0 means
unlimited, and with both limits 0 the limiter does nothing at all (the old worker never enforced its limits, so
that is the default). Backends implement four primitives; checking and recording happen in one atomic primitive
(the old check-then-record let concurrent workers overshoot the limit).
"""
from __future__ import annotations

import math
import secrets
import threading
from typing import Callable, NamedTuple, TypeVar

from llm_service.cache.failopen import FailOpenGuard
from llm_service.ratelimit.windows import TimedDeques

T = TypeVar("T")
_FAILED = object()


class Window(NamedTuple):
    limit_type: str  # "global" or "user": what a refusal reports
    key: str
    limit: int


class SlidingWindowLimiter:
    def __init__(self, *, prefix: str, global_limit: int, per_user_limit: int, window_seconds: float,
                 clock: Callable[[], float], guard: FailOpenGuard | None = None) -> None:
        for name, value in (("global_limit", global_limit), ("per_user_limit", per_user_limit)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (unlimited) or more, got {value}")
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        self.global_limit = global_limit
        self.per_user_limit = per_user_limit
        self.window_seconds = window_seconds
        self._base = f"{prefix}:rate_limit:"
        self._clock = clock
        self._guard = guard
        self._ledger_lock = threading.Lock()
        self._ledger = TimedDeques(window_seconds)  # (service, user) -> (time, member, keys) this process added

    # -- keys ---------------------------------------------------------------------------------------------------
    def global_key(self, service: str) -> str:
        return f"{self._base}global:{service}"

    def user_key(self, service: str, user_id: str) -> str:
        return f"{self._base}user:{service}:{user_id}"

    def _windows(self, service: str, user_id: str | None) -> list[Window]:
        windows = []
        if self.global_limit > 0:
            windows.append(Window("global", self.global_key(service), self.global_limit))
        if user_id and self.per_user_limit > 0:
            windows.append(Window("user", self.user_key(service, str(user_id)), self.per_user_limit))
        return windows

    # -- RateLimiter port ---------------------------------------------------------------------------------------
    def acquire(self, service: str, user_id: str | None = None) -> tuple[str, float] | None:
        """Record the call and return None, or record nothing and return ``(limit_type, retry_after_seconds)``."""
        windows = self._windows(service, user_id)
        if not windows:
            return None
        now = self._clock()
        member = f"{now:.6f}-{secrets.token_hex(6)}"
        refused = self._guarded("rate limit acquire", lambda: self._record_if_allowed(windows, now, member),
                                _FAILED)
        if refused is _FAILED:
            return None
        if refused is None:
            with self._ledger_lock:
                self._ledger.append((service, user_id or None), (now, member, tuple(w.key for w in windows)))
            return None
        index, oldest = refused
        return windows[index].limit_type, self._retry_after(oldest, now)

    def release(self, service: str, user_id: str | None = None) -> None:
        """Give back the newest slot this process took for (service, user): its upstream call failed."""
        with self._ledger_lock:
            entry = self._ledger.pop_newest((service, user_id or None), self._clock())
        if entry is not None:
            _, member, keys = entry
            self._guarded("rate limit release", lambda: self._remove(keys, member), None)

    # -- inspection and administration ------------------------------------------------------------------------
    def remaining(self, service: str, user_id: str | None = None) -> tuple[int, int]:
        """``(user_remaining, global_remaining)``; -1 means unlimited (no user, a limit of 0) or unknown."""
        now = self._clock()
        user = -1
        if user_id and self.per_user_limit > 0:
            user = self._left(self.per_user_limit, self.user_key(service, str(user_id)), now)
        total = self._left(self.global_limit, self.global_key(service), now) if self.global_limit > 0 else -1
        return user, total

    def reset(self, service: str, user_id: str | None = None) -> None:
        """Forget the user's window when ``user_id`` is given, else the service's global window (as before)."""
        key = self.user_key(service, str(user_id)) if user_id else self.global_key(service)
        self._guarded("rate limit reset", lambda: self._delete(key), None)

    def _left(self, limit: int, key: str, now: float) -> int:
        count = self._guarded("rate limit count", lambda: self._count(key, now), None)
        return -1 if count is None else max(0, limit - count)

    def _retry_after(self, oldest: float | None, now: float) -> int:
        """Whole seconds until the oldest counted call leaves the window, at least 1."""
        if oldest is None:
            return max(1, math.ceil(self.window_seconds))
        return max(1, math.ceil(oldest + self.window_seconds - now))

    def _guarded(self, action: str, operation: Callable[[], T], default: T) -> T:
        if self._guard is None:
            return operation()
        return self._guard.call(action, operation, default)

    # -- backend primitives -----------------------------------------------------------------------------------
    def _record_if_allowed(self, windows: list[Window], now: float,
                           member: str) -> tuple[int, float | None] | None:
        """Atomically: drop members older than the window; if some window is full return (its index, its oldest
        time) and record nothing; else add ``member`` at ``now`` to every window and return None."""
        raise NotImplementedError

    def _remove(self, keys: tuple[str, ...], member: str) -> None:
        raise NotImplementedError

    def _count(self, key: str, now: float) -> int:
        raise NotImplementedError

    def _delete(self, key: str) -> None:
        raise NotImplementedError
