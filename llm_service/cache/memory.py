"""The in-process cache: used when Redis is unreachable (the CLI) and as the reference for Redis behaviour."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable, Mapping, NamedTuple

from llm_service.cache.entry import build_stats, decode_entry, encode_entry, key_or_none
from llm_service.cache.lru import LruTtlStore


class _Entry(NamedTuple):
    service: str
    operation: str
    raw: str


class MemoryCache:
    """LRU with per-entry expiry (the old L1 never expired entries) and hit/miss counters per service."""

    def __init__(self, capacity: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._store: LruTtlStore[_Entry] = LruTtlStore(capacity, clock)
        self._lock = threading.Lock()
        self._counters: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def get(self, service: str, operation: str, params: Mapping[str, Any], *, upstream: str = "") -> Any | None:
        key = key_or_none(service, operation, params, upstream)
        if key is None:
            return None
        entry = self._store.get(key)
        with self._lock:
            self._counters[service][0 if entry is not None else 1] += 1
        return decode_entry(entry.raw) if entry is not None else None

    def set(self, service: str, operation: str, params: Mapping[str, Any], data: Any, ttl: int, *,
            upstream: str = "") -> None:
        if ttl <= 0:
            return
        key = key_or_none(service, operation, params, upstream)
        raw = encode_entry(service, operation, params, data, time.time()) if key is not None else None
        if key is not None and raw is not None:
            self._store.put(key, _Entry(service, operation, raw), ttl)

    def clear_expired(self) -> int:
        """Expired entries are already invisible; this frees their memory and says how many there were."""
        return self._store.purge_expired()

    def stats(self, service: str | None = None) -> dict[str, Any]:
        with self._lock:
            counters = {name: (hits, misses) for name, (hits, misses) in self._counters.items()}
        entries = ((entry.service, entry.operation) for entry in self._store.live_values())
        return build_stats(entries, counters, service)
