"""The in-process limiter: for the CLI when Redis is unreachable; limits then hold per process only."""
from __future__ import annotations

import threading
import time
from typing import Callable

from llm_service.ratelimit.base import SlidingWindowLimiter, Window
from llm_service.ratelimit.windows import TimedDeques


class MemoryRateLimiter(SlidingWindowLimiter):
    def __init__(self, *, prefix: str = "llm", global_limit: int = 0, per_user_limit: int = 0,
                 window_seconds: float = 3600, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(prefix=prefix, global_limit=global_limit, per_user_limit=per_user_limit,
                         window_seconds=window_seconds, clock=clock)
        self._lock = threading.Lock()
        self._sets = TimedDeques(window_seconds)  # key -> (time, member), oldest first

    def _record_if_allowed(self, windows: list[Window], now: float,
                           member: str) -> tuple[int, float | None] | None:
        with self._lock:
            for index, window in enumerate(windows):
                live = self._sets.live(window.key, now)
                if len(live) >= window.limit:
                    return index, live[0][0] if live else None
            for window in windows:
                self._sets.append(window.key, (now, member))
            return None

    def _remove(self, keys: tuple[str, ...], member: str) -> None:
        with self._lock:
            for key in keys:
                self._sets.remove_member(key, member)

    def _count(self, key: str, now: float) -> int:
        with self._lock:
            return len(self._sets.live(key, now))

    def _delete(self, key: str) -> None:
        with self._lock:
            self._sets.delete(key)
