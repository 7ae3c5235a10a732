"""Fail-open: an unreachable Redis makes lookups misses and writes no-ops, with one warning rather than one per
call; plus the helpers the CLI uses to pick Redis or the in-process cache."""
from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from llm_service.cache import MemoryCache, RedisCache, make_cache, redis_reachable
from llm_service.cache.failopen import FailOpenGuard

CACHE_LOGGER = "llm_service.cache"


def _warnings(caplog, name):
    return [r for r in caplog.records if r.name == name and r.levelno == logging.WARNING]


def test_unreachable_redis_is_a_miss_and_set_does_not_raise(dead_redis, caplog):
    cache = RedisCache(dead_redis, prefix="unused")
    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    cache.set("weatherapi", "current", {"q": "Seattle"}, {"temp_c": 9}, 60)
    assert cache.get("weatherapi", "current", {"q": "Seattle"}) is None
    assert cache.get("weatherapi", "current", {"q": "Paris"}) is None
    warnings = _warnings(caplog, CACHE_LOGGER)
    assert len(warnings) == 1
    assert "Redis unavailable" in warnings[0].getMessage()


def test_l1_still_serves_while_redis_is_unreachable(dead_redis, clock):
    cache = RedisCache(dead_redis, prefix="unused", l1_capacity=5, clock=clock)
    cache.set("weatherapi", "current", {"q": "Seattle"}, {"temp_c": 9}, 60)
    assert cache.get("weatherapi", "current", {"q": "Seattle"}) == {"temp_c": 9}


class _Logger(logging.Logger):
    """Records what would be logged, so a test can count warnings exactly."""

    def __init__(self):
        super().__init__("test.failopen")
        self.messages: list[tuple[int, str]] = []

    def _log(self, level, msg, args, *rest, **kwargs):
        self.messages.append((level, msg % args))


def _attempt(guard, exc=None):
    def operation():
        if exc is not None:
            raise exc
        return "ok"
    return guard.call("test op", operation, "fallback")


def test_guard_skips_redis_during_the_cooldown_then_tries_again(clock):
    guard = FailOpenGuard(_Logger(), "test component", "tests fail open", cooldown=5, clock=clock)
    calls = []

    def failing():
        calls.append(1)
        raise RedisConnectionError("down")

    assert guard.call("op", failing, "fallback") == "fallback"
    assert guard.call("op", failing, "fallback") == "fallback"
    assert len(calls) == 1
    clock.advance(5)
    assert _attempt(guard) == "ok"


def test_guard_warns_once_per_interval_with_a_count_of_suppressed_warnings(clock):
    logger = _Logger()
    guard = FailOpenGuard(logger, "test component", "tests fail open", cooldown=0, warn_interval=60, clock=clock)
    for _ in range(4):
        _attempt(guard, RedisConnectionError("down"))
    clock.advance(60)
    _attempt(guard, RedisConnectionError("down"))
    warnings = [m for level, m in logger.messages if level == logging.WARNING]
    assert len(warnings) == 2
    assert "suppressed" not in warnings[0]
    assert "3 similar warnings suppressed" in warnings[1]


def test_guard_logs_recovery_once(clock):
    logger = _Logger()
    guard = FailOpenGuard(logger, "test component", "tests fail open", cooldown=0, clock=clock)
    _attempt(guard, RedisConnectionError("down"))
    _attempt(guard)
    _attempt(guard)
    infos = [m for level, m in logger.messages if level == logging.INFO]
    assert infos == ["Redis reachable again; the test component is back to normal"]


def test_guard_warning_does_not_leak_secrets(clock):
    logger = _Logger()
    guard = FailOpenGuard(logger, "test component", "tests fail open", clock=clock)
    _attempt(guard, RedisConnectionError("error at https://h/x?key=abcdef123456"))
    assert "abcdef123456" not in logger.messages[0][1]


def test_guard_lets_unrelated_errors_through(clock):
    guard = FailOpenGuard(_Logger(), "test component", "tests fail open", clock=clock)
    with pytest.raises(KeyError):  # a programming error must not be swallowed
        _attempt(guard, KeyError("bug"))


def test_redis_reachable(redis_client, dead_redis):
    assert redis_reachable(redis_client) is True
    assert redis_reachable(dead_redis, timeout=0.2) is False
    assert redis_reachable(None) is False


def test_make_cache_picks_redis_when_given_a_client(redis_client, redis_prefix):
    cache = make_cache(redis_client, prefix=redis_prefix, l1_capacity=3)
    assert isinstance(cache, RedisCache)
    cache.set("svc", "op", {}, 1, 60)
    assert redis_client.exists(cache.entry_key("svc", "op", {})) == 1


def test_make_cache_falls_back_to_memory_without_a_client():
    cache = make_cache(None, prefix="llm")
    assert isinstance(cache, MemoryCache)
    cache.set("svc", "op", {}, 1, 60)
    assert cache.get("svc", "op", {}) == 1
