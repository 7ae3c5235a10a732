"""What the Redis cache leaves in Redis: documented key names and entry format, so operators can inspect it."""
from __future__ import annotations

import json

from llm_service.cache import RedisCache, cache_key


def test_entry_key_and_document(redis_client, redis_prefix, clock):
    cache = RedisCache(redis_client, prefix=redis_prefix, clock=clock)
    params = {"q": "Seattle", "days": 2}
    cache.set("weatherapi", "forecast", params, {"forecast": [1, 2]}, 600)

    key = f"{redis_prefix}:cache:weatherapi:forecast:{cache_key('weatherapi', 'forecast', params)}"
    assert cache.entry_key("weatherapi", "forecast", params) == key
    doc = json.loads(redis_client.get(key))
    assert doc == {"data": {"forecast": [1, 2]}, "params": params, "created_at": clock.now}


def test_secret_named_parameters_are_not_stored_in_clear(redis_client, redis_prefix):
    cache = RedisCache(redis_client, prefix=redis_prefix)
    params = {"q": "Seattle", "api_key": "sk-live-123456"}
    cache.set("weatherapi", "current", params, {"temp_c": 9}, 600)
    raw = redis_client.get(cache.entry_key("weatherapi", "current", params))
    assert b"sk-live-123456" not in raw
    assert cache.get("weatherapi", "current", params) == {"temp_c": 9}


def test_hit_and_miss_counters_live_in_a_hash_per_service(redis_client, redis_prefix):
    cache = RedisCache(redis_client, prefix=redis_prefix)
    cache.set("weatherapi", "current", {"q": "Seattle"}, 1, 600)
    cache.get("weatherapi", "current", {"q": "Seattle"})
    cache.get("weatherapi", "current", {"q": "Paris"})
    assert redis_client.hgetall(f"{redis_prefix}:cache:stats:weatherapi") == {b"hits": b"1", b"misses": b"1"}


def test_counters_are_shared_between_instances(redis_client, redis_prefix):
    worker_a = RedisCache(redis_client, prefix=redis_prefix, l1_capacity=5)
    worker_b = RedisCache(redis_client, prefix=redis_prefix)
    worker_a.set("weatherapi", "current", {"q": "Seattle"}, 1, 600)
    assert worker_b.get("weatherapi", "current", {"q": "Seattle"}) == 1
    assert worker_a.get("weatherapi", "current", {"q": "Seattle"}) == 1
    assert worker_b.stats()["total_hits"] == 2


def test_stats_ignore_other_prefixes_and_non_entry_keys(redis_client, redis_prefix):
    cache = RedisCache(redis_client, prefix=redis_prefix)
    other = RedisCache(redis_client, prefix=f"{redis_prefix}:other")
    cache.set("weatherapi", "current", {"q": "Seattle"}, 1, 600)
    other.set("weatherapi", "current", {"q": "Seattle"}, 1, 600)
    redis_client.set(f"{redis_prefix}:cache:weatherapi:current:not-a-hash", "x", ex=60)

    stats = cache.stats()
    assert stats["total_entries"] == 1
    assert list(stats["services"]) == ["weatherapi"]


def test_stats_work_when_the_client_decodes_responses(redis_prefix):
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=15, decode_responses=True)
    try:
        cache = RedisCache(client, prefix=redis_prefix, l1_capacity=3)
        cache.set("google_places", "details", {"place_id": "abc"}, {"name": "Clinic"}, 600)
        assert cache.get("google_places", "details", {"place_id": "abc"}) == {"name": "Clinic"}
        assert cache.get("google_places", "details", {"place_id": "abc"}) == {"name": "Clinic"}
        stats = cache.stats("google_places")
        assert stats["total_entries"] == 1 and stats["total_hits"] == 2
    finally:
        client.close()


def test_unreadable_entry_is_a_miss(redis_client, redis_prefix):
    cache = RedisCache(redis_client, prefix=redis_prefix)
    redis_client.set(cache.entry_key("weatherapi", "current", {"q": "X"}), b"{not json", ex=60)
    assert cache.get("weatherapi", "current", {"q": "X"}) is None
