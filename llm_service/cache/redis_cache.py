"""The Redis cache shared by every worker: entries with native TTLs and hit/miss counters per service.

Layout (``<prefix>`` is the deployment's key prefix):

- ``<prefix>:cache:<service>:<operation>:<sha256>``: JSON ``{"data", "params", "created_at"}`` with a TTL, so
  Redis drops expired entries itself (nothing has to schedule a clean-up, unlike the old table);
- ``<prefix>:cache:stats:<service>``: a hash with fields ``hits`` and ``misses``.

A lookup is one Lua call (read the entry, its remaining TTL, and count the hit or miss). An optional small L1 in
front saves the payload transfer for hot entries; it keeps an entry no longer than Redis does.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Iterator, Mapping

from llm_service.cache.entry import build_stats, decode_entry, encode_entry, key_or_none
from llm_service.cache.failopen import FailOpenGuard
from llm_service.cache.keys import cache_key
from llm_service.cache.lru import LruTtlStore

logger = logging.getLogger("llm_service.cache")

_HASH = re.compile(r"[0-9a-f]{64}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# KEYS[1] entry, KEYS[2] stats hash. Returns {raw, pttl} on a hit, nil on a miss.
_GET_LUA = """
local raw = redis.call('GET', KEYS[1])
if raw then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
  return {raw, redis.call('PTTL', KEYS[1])}
end
redis.call('HINCRBY', KEYS[2], 'misses', 1)
return false
"""


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


class RedisCache:
    def __init__(self, redis_client: Any, *, prefix: str = "llm", clock: Callable[[], float] = time.time,
                 l1_capacity: int = 0, failure_cooldown: float = 5.0, warn_interval: float = 60.0) -> None:
        self._redis = redis_client
        self._base = f"{prefix}:cache:"
        self._clock = clock
        self._l1: LruTtlStore[str] | None = LruTtlStore(l1_capacity, clock) if l1_capacity > 0 else None
        self._get_script = redis_client.register_script(_GET_LUA)
        self._guard = FailOpenGuard(logger, "cache", "lookups are misses, nothing is stored",
                                    cooldown=failure_cooldown, warn_interval=warn_interval)

    # -- keys ---------------------------------------------------------------------------------------------------
    def entry_key(self, service: str, operation: str, params: Mapping[str, Any], upstream: str = "") -> str:
        """The Redis key of an entry (public so operators and tests can inspect one)."""
        return self._entry_key(service, operation, cache_key(service, operation, params, upstream))

    def _entry_key(self, service: str, operation: str, digest: str) -> str:
        return f"{self._base}{service}:{operation}:{digest}"

    def _stats_key(self, service: str) -> str:
        return f"{self._base}stats:{service}"

    # -- Cache port ---------------------------------------------------------------------------------------------
    def get(self, service: str, operation: str, params: Mapping[str, Any], *, upstream: str = "") -> Any | None:
        digest = key_or_none(service, operation, params, upstream)
        if digest is None:
            return None
        key = self._entry_key(service, operation, digest)
        if self._l1 is not None:
            raw = self._l1.get(key)
            if raw is not None:
                # Counted in Redis too, so the hit rate covers every worker (the old L1 hits went uncounted).
                stats_key = self._stats_key(service)
                self._guard.call("cache hit count", lambda: self._redis.hincrby(stats_key, "hits", 1), None)
                return decode_entry(raw)
        found = self._guard.call("cache get", lambda: self._get_script(keys=[key, self._stats_key(service)]), None)
        if not found:
            return None
        raw, pttl = found
        try:
            data = decode_entry(raw)
        except ValueError:
            logger.warning("Ignoring unreadable cache entry for %s.%s", service, operation)
            return None
        if self._l1 is not None and int(pttl) > 0:
            self._l1.put(key, _text(raw), int(pttl) / 1000)
        return data

    def set(self, service: str, operation: str, params: Mapping[str, Any], data: Any, ttl: int, *,
            upstream: str = "") -> None:
        if ttl <= 0:
            return
        digest = key_or_none(service, operation, params, upstream)
        if digest is None:
            return
        raw = encode_entry(service, operation, params, data, self._clock())
        if raw is None:
            return
        key = self._entry_key(service, operation, digest)
        if self._l1 is not None:
            self._l1.put(key, raw, ttl)
        milliseconds = max(1, round(ttl * 1000))
        self._guard.call("cache set", lambda: self._redis.set(key, raw, px=milliseconds), None)

    # -- reporting ----------------------------------------------------------------------------------------------
    def clear_expired(self) -> int:
        """Redis expires entries itself; only the L1 may hold expired entries to free. Returns how many went."""
        return self._l1.purge_expired() if self._l1 is not None else 0

    def stats(self, service: str | None = None) -> dict[str, Any]:
        """Entry counts (SCAN, never KEYS) and hit/miss counters. A reporting call: Redis errors propagate."""
        entries: list[tuple[str, str]] = []
        stats_services: list[str] = []
        for rest in self._scan_rest(service):
            parsed = self._parse_entry(rest)
            if parsed is not None:
                entries.append(parsed)
            elif rest.startswith("stats:"):
                stats_services.append(rest[len("stats:"):])
        if service is not None and service not in stats_services:
            stats_services.append(service)
        pipe = self._redis.pipeline(transaction=False)
        for name in stats_services:
            pipe.hmget(self._stats_key(name), "hits", "misses")
        counters = {name: (int(hits or 0), int(misses or 0))
                    for name, (hits, misses) in zip(stats_services, pipe.execute())}
        return build_stats(entries, counters, service)

    def _scan_rest(self, service: str | None) -> Iterator[str]:
        """Every key under ``<prefix>:cache:`` (or one service's entries), without that common part."""
        pattern = _glob_escape(self._base) + ("*" if service is None else f"{_glob_escape(service)}:*")
        for key in self._redis.scan_iter(match=pattern, count=500):
            yield _text(key)[len(self._base):]

    @staticmethod
    def _parse_entry(rest: str) -> tuple[str, str] | None:
        parts = rest.rsplit(":", 2)
        if len(parts) == 3 and parts[0] and _HASH.fullmatch(parts[2]):
            return parts[0], parts[1]
        return None
