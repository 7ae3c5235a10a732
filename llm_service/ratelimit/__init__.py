"""Sliding-window rate limits per service and per user: Redis for all workers, in-process for the CLI.

Both implement :class:`llm_service.engine.ports.RateLimiter` and fail open (a limiter problem allows the call).
"""
from __future__ import annotations

from typing import Any

from llm_service.cache.failopen import redis_reachable
from llm_service.ratelimit.memory import MemoryRateLimiter
from llm_service.ratelimit.redis_limiter import RedisRateLimiter

__all__ = ["MemoryRateLimiter", "RedisRateLimiter", "make_rate_limiter", "redis_reachable"]


def make_rate_limiter(redis_client: Any | None, *, prefix: str, global_limit: int, per_user_limit: int,
                      window_seconds: float) -> MemoryRateLimiter | RedisRateLimiter:
    """The Redis limiter when given a client, else the in-process one (decide with :func:`redis_reachable`)."""
    if redis_client is None:
        return MemoryRateLimiter(prefix=prefix, global_limit=global_limit, per_user_limit=per_user_limit,
                                 window_seconds=window_seconds)
    return RedisRateLimiter(redis_client, prefix=prefix, global_limit=global_limit, per_user_limit=per_user_limit,
                            window_seconds=window_seconds)
