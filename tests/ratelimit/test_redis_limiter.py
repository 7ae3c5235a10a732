"""Redis specifics: the documented keys, limits shared by several workers, fail-open, and the factory."""
from __future__ import annotations

import logging
import threading

from llm_service.ratelimit import MemoryRateLimiter, RedisRateLimiter, make_rate_limiter, redis_reachable

LIMITER_LOGGER = "llm_service.ratelimit"


def test_windows_are_sorted_sets_with_an_expiry(redis_client, redis_prefix, clock):
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix, global_limit=5, per_user_limit=2,
                               window_seconds=600, clock=clock)
    limiter.acquire("weatherapi", "user1")

    global_key = f"{redis_prefix}:rate_limit:global:weatherapi"
    user_key = f"{redis_prefix}:rate_limit:user:weatherapi:user1"
    for key in (global_key, user_key):
        members = redis_client.zrange(key, 0, -1, withscores=True)
        assert len(members) == 1
        assert members[0][1] == clock.now
        assert 600 < redis_client.ttl(key) <= 660
    assert redis_client.zrange(global_key, 0, -1) == redis_client.zrange(user_key, 0, -1)


def test_refusal_writes_nothing_to_redis(redis_client, redis_prefix, clock):
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix, global_limit=1, clock=clock)
    limiter.acquire("weatherapi")
    limiter.acquire("weatherapi")
    assert redis_client.zcard(f"{redis_prefix}:rate_limit:global:weatherapi") == 1


def test_unlimited_windows_are_not_stored(redis_client, redis_prefix, clock):
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix, global_limit=5, per_user_limit=0, clock=clock)
    limiter.acquire("weatherapi", "user1")
    assert redis_client.exists(f"{redis_prefix}:rate_limit:user:weatherapi:user1") == 0


def test_workers_share_one_window_atomically(redis_client, redis_prefix):
    # Twenty "workers", each with its own limiter and connection pool, race for five slots.
    import redis

    clients = [redis.Redis(host="127.0.0.1", port=6379, db=15) for _ in range(20)]
    limiters = [RedisRateLimiter(c, prefix=redis_prefix, global_limit=5, window_seconds=60) for c in clients]
    barrier = threading.Barrier(len(limiters))
    allowed = []

    def call(limiter):
        barrier.wait()
        if limiter.acquire("weatherapi") is None:
            allowed.append(limiter)

    threads = [threading.Thread(target=call, args=(limiter,)) for limiter in limiters]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for client in clients:
            client.close()
    assert len(allowed) == 5
    assert redis_client.zcard(f"{redis_prefix}:rate_limit:global:weatherapi") == 5


def test_a_worker_releases_only_slots_it_took(redis_client, redis_prefix):
    worker_a = RedisRateLimiter(redis_client, prefix=redis_prefix, global_limit=5)
    worker_b = RedisRateLimiter(redis_client, prefix=redis_prefix, global_limit=5)
    worker_a.acquire("weatherapi")
    worker_b.release("weatherapi")
    assert worker_b.remaining("weatherapi") == (-1, 4)
    worker_a.release("weatherapi")
    assert worker_b.remaining("weatherapi") == (-1, 5)


def test_unreachable_redis_allows_calls_with_one_warning(dead_redis, caplog):
    caplog.set_level(logging.WARNING, logger=LIMITER_LOGGER)
    limiter = RedisRateLimiter(dead_redis, prefix="unused", global_limit=1, per_user_limit=1)
    assert limiter.acquire("weatherapi", "user1") is None
    assert limiter.acquire("weatherapi", "user1") is None
    limiter.release("weatherapi", "user1")
    limiter.reset("weatherapi", "user1")
    assert limiter.remaining("weatherapi", "user1") == (-1, -1)
    warnings = [r for r in caplog.records if r.name == LIMITER_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "limits are not enforced" in warnings[0].getMessage()


def test_both_limits_zero_never_touches_redis(dead_redis, caplog):
    caplog.set_level(logging.WARNING, logger=LIMITER_LOGGER)
    limiter = RedisRateLimiter(dead_redis, prefix="unused")
    assert limiter.acquire("weatherapi", "user1") is None
    limiter.release("weatherapi", "user1")
    assert limiter.remaining("weatherapi", "user1") == (-1, -1)
    assert not caplog.records


def test_make_rate_limiter_picks_redis_when_given_a_client(redis_client, redis_prefix):
    limiter = make_rate_limiter(redis_client, prefix=redis_prefix, global_limit=3, per_user_limit=1,
                                window_seconds=60)
    assert isinstance(limiter, RedisRateLimiter)
    limiter.acquire("weatherapi", "user1")
    assert redis_client.zcard(f"{redis_prefix}:rate_limit:global:weatherapi") == 1


def test_make_rate_limiter_falls_back_to_memory_without_a_client():
    limiter = make_rate_limiter(None, prefix="llm", global_limit=1, per_user_limit=0, window_seconds=60)
    assert isinstance(limiter, MemoryRateLimiter)
    assert limiter.acquire("weatherapi") is None
    assert limiter.acquire("weatherapi")[0] == "global"


def test_redis_reachable_is_exported_here_too(redis_client, dead_redis):
    assert redis_reachable(redis_client) is True
    assert redis_reachable(dead_redis, timeout=0.2) is False
