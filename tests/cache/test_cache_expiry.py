"""Expiry (old acceptance cases §12.2 #9 and #12). The old L1 ignored TTLs, so the same manager kept serving an
expired entry; here neither the in-process cache nor the L1 in front of Redis does."""
from __future__ import annotations

import time

import pytest

from llm_service.cache import MemoryCache, RedisCache

WEATHER = ("weatherapi", "current")
SEATTLE = {"q": "Seattle"}


def test_memory_cache_entry_expires_after_its_ttl(clock):
    cache = MemoryCache(clock=clock)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 1)
    clock.advance(0.5)
    assert cache.get(*WEATHER, SEATTLE) == {"temp_c": 9}
    clock.advance(1.5)
    assert cache.get(*WEATHER, SEATTLE) is None
    assert cache.stats()["total_entries"] == 0


def test_memory_cache_clear_expired_counts_expired_entries(clock):
    cache = MemoryCache(clock=clock)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 1)
    cache.set(*WEATHER, {"q": "Paris"}, {"temp_c": 12}, 3600)
    clock.advance(2)
    assert cache.clear_expired() >= 1
    assert cache.get(*WEATHER, {"q": "Paris"}) == {"temp_c": 12}


def test_memory_cache_evicts_least_recently_used_beyond_capacity(clock):
    cache = MemoryCache(capacity=2, clock=clock)
    for city in ("A", "B", "C"):
        cache.set(*WEATHER, {"q": city}, city, 60)
    assert cache.get(*WEATHER, {"q": "A"}) is None
    assert cache.get(*WEATHER, {"q": "C"}) == "C"


@pytest.mark.parametrize("l1_capacity", [0, 10])
def test_redis_entry_expires_after_its_ttl_even_with_an_l1(redis_client, redis_prefix, l1_capacity):
    # The one real wait in these tests: Redis's own expiry cannot be driven by a fake clock.
    cache = RedisCache(redis_client, prefix=redis_prefix, l1_capacity=l1_capacity)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 1)
    assert cache.get(*WEATHER, SEATTLE) == {"temp_c": 9}
    time.sleep(1.2)
    assert cache.get(*WEATHER, SEATTLE) is None


def test_redis_entry_carries_a_native_ttl(redis_client, redis_prefix):
    cache = RedisCache(redis_client, prefix=redis_prefix)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 3600)
    ttl = redis_client.ttl(cache.entry_key(*WEATHER, SEATTLE))
    assert 3590 <= ttl <= 3600


def test_l1_stops_serving_at_the_entry_ttl(redis_client, redis_prefix, clock):
    cache = RedisCache(redis_client, prefix=redis_prefix, l1_capacity=10, clock=clock)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 60)
    # Redis no longer has it (as if expired there); only the L1 can answer now.
    redis_client.delete(cache.entry_key(*WEATHER, SEATTLE))
    assert cache.get(*WEATHER, SEATTLE) == {"temp_c": 9}
    clock.advance(60)
    assert cache.get(*WEATHER, SEATTLE) is None


def test_l1_filled_from_redis_keeps_only_the_remaining_ttl(redis_client, redis_prefix, clock):
    writer = RedisCache(redis_client, prefix=redis_prefix)
    writer.set(*WEATHER, SEATTLE, {"temp_c": 9}, 100)
    redis_client.pexpire(writer.entry_key(*WEATHER, SEATTLE), 30_000)  # 70 s of its life already gone

    reader = RedisCache(redis_client, prefix=redis_prefix, l1_capacity=10, clock=clock)
    assert reader.get(*WEATHER, SEATTLE) == {"temp_c": 9}
    redis_client.delete(writer.entry_key(*WEATHER, SEATTLE))
    clock.advance(25)
    assert reader.get(*WEATHER, SEATTLE) == {"temp_c": 9}
    clock.advance(6)
    assert reader.get(*WEATHER, SEATTLE) is None


def test_redis_clear_expired_frees_expired_l1_entries(redis_client, redis_prefix, clock):
    cache = RedisCache(redis_client, prefix=redis_prefix, l1_capacity=10, clock=clock)
    cache.set(*WEATHER, SEATTLE, {"temp_c": 9}, 1)
    clock.advance(2)
    assert cache.clear_expired() == 1
    assert RedisCache(redis_client, prefix=redis_prefix).clear_expired() == 0
