"""A thread-safe LRU map whose entries expire.

Shared by :class:`~llm_service.cache.memory.MemoryCache` and the optional L1 in front of Redis. The old L1 had no
expiry, so a one-hour weather answer could be served for the life of the worker; here every entry carries its
deadline and an expired entry is never returned.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Iterator, TypeVar

V = TypeVar("V")


class LruTtlStore(Generic[V]):
    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        """The live value (now most recently used), or None; an expired entry is dropped on the way."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: V, ttl: float) -> None:
        """Store for ``ttl`` seconds; beyond capacity the least recently used entry goes."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def purge_expired(self) -> int:
        """Drop every expired entry now (normally they go lazily) and say how many went."""
        with self._lock:
            now = self._clock()
            expired = [key for key, (expires_at, _) in self._entries.items() if now >= expires_at]
            for key in expired:
                del self._entries[key]
            return len(expired)

    def live_values(self) -> Iterator[V]:
        """A snapshot of the unexpired values, for statistics."""
        with self._lock:
            now = self._clock()
            snapshot = [value for expires_at, value in self._entries.values() if now < expires_at]
        return iter(snapshot)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
