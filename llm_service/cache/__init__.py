"""Upstream response cache: Redis shared by all workers, or in-process when Redis is unreachable (the CLI).

Both implement :class:`llm_service.engine.ports.Cache` and fail open: a cache problem is a miss, never a failed step.
"""
from __future__ import annotations

from typing import Any

from llm_service.cache.failopen import redis_reachable
from llm_service.cache.keys import cache_key
from llm_service.cache.memory import MemoryCache
from llm_service.cache.redis_cache import RedisCache

__all__ = ["cache_key", "MemoryCache", "RedisCache", "make_cache", "redis_reachable"]


def make_cache(redis_client: Any | None, *, prefix: str, l1_capacity: int = 0) -> MemoryCache | RedisCache:
    """The Redis cache when given a client, else the in-process one (decide with :func:`redis_reachable`)."""
    if redis_client is None:
        return MemoryCache()
    return RedisCache(redis_client, prefix=prefix, l1_capacity=l1_capacity)
