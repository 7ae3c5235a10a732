"""The Redis limiter shared by every worker: sorted sets scored by epoch seconds, checked and recorded atomically.

``now`` comes from the caller's clock (passed into the script), so tests can move time without sleeping; workers'
clocks are assumed NTP-synchronised, as the old limiter assumed too.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from llm_service.cache.failopen import FailOpenGuard
from llm_service.ratelimit.base import SlidingWindowLimiter, Window

logger = logging.getLogger("llm_service.ratelimit")

# KEYS: the windows in check order. ARGV: now, window, expire seconds, member, then one limit per key.
# Returns nil when recorded, else {index (1-based) of the full window, its oldest score as a string}.
_ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local cutoff = now - tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff)
end
for i = 1, #KEYS do
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, oldest[2] or false}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return false
"""


class RedisRateLimiter(SlidingWindowLimiter):
    def __init__(self, redis_client: Any, *, prefix: str = "llm", global_limit: int = 0, per_user_limit: int = 0,
                 window_seconds: float = 3600, clock: Callable[[], float] = time.time,
                 failure_cooldown: float = 5.0, warn_interval: float = 60.0) -> None:
        guard = FailOpenGuard(logger, "rate limiter", "limits are not enforced", cooldown=failure_cooldown,
                              warn_interval=warn_interval)
        super().__init__(prefix=prefix, global_limit=global_limit, per_user_limit=per_user_limit,
                         window_seconds=window_seconds, clock=clock, guard=guard)
        self._redis = redis_client
        self._acquire_script = redis_client.register_script(_ACQUIRE_LUA)
        self._expire_seconds = math.ceil(window_seconds) + 60

    def _record_if_allowed(self, windows: list[Window], now: float,
                           member: str) -> tuple[int, float | None] | None:
        args = [repr(now), repr(float(self.window_seconds)), self._expire_seconds, member,
                *(w.limit for w in windows)]
        refused = self._acquire_script(keys=[w.key for w in windows], args=args)
        if not refused:
            return None
        index, oldest = refused
        return int(index) - 1, float(oldest) if oldest else None

    def _remove(self, keys: tuple[str, ...], member: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key, member)
        pipe.execute()

    def _count(self, key: str, now: float) -> int:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now - self.window_seconds)
        pipe.zcard(key)
        return int(pipe.execute()[1])

    def _delete(self, key: str) -> None:
        self._redis.delete(key)
