"""Behaviour every cache shares (old acceptance cases §12.2 #8, #10, #11 and more), run against the in-process
cache, the Redis cache, and the Redis cache with an L1 in front."""
from __future__ import annotations

import pytest

from llm_service.cache import MemoryCache, RedisCache

PLACES = ("google_places", "nearby_search")
LOCATION = {"location": "47.6062,-122.3321", "radius": 5000, "type": "hospital"}


@pytest.fixture(params=["memory", "redis", "redis+l1"])
def cache(request, clock):
    if request.param == "memory":
        return MemoryCache(capacity=50, clock=clock)
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisCache(client, prefix=prefix, l1_capacity=50 if request.param == "redis+l1" else 0)


def test_set_then_get_returns_the_data(cache):
    data = {"results": [{"name": "Hospital"}]}
    cache.set(*PLACES, {"location": "47.6,-122.3"}, data, 3600)
    assert cache.get(*PLACES, {"location": "47.6,-122.3"}) == data


def test_unknown_entry_is_a_miss(cache):
    assert cache.get(*PLACES, LOCATION) is None


def test_lookup_ignores_parameter_order_but_not_values(cache):
    cache.set(*PLACES, LOCATION, {"results": []}, 3600)
    assert cache.get(*PLACES, dict(reversed(list(LOCATION.items())))) == {"results": []}
    assert cache.get(*PLACES, {**LOCATION, "radius": 10000}) is None
    assert cache.get("google_places", "text_search", LOCATION) is None


def test_hits_are_counted_on_every_read(cache):
    cache.set("weatherapi", "current", {"q": "Seattle"}, {"temp_c": 9}, 3600)
    assert cache.get("weatherapi", "current", {"q": "Seattle"}) == {"temp_c": 9}
    assert cache.get("weatherapi", "current", {"q": "Seattle"}) == {"temp_c": 9}
    stats = cache.stats("weatherapi")
    assert stats["total_hits"] == 2
    assert stats["services"]["weatherapi"]["total_hits"] == 2


def test_misses_are_counted(cache):
    cache.get("weatherapi", "current", {"q": "Nowhere"})
    cache.get("weatherapi", "current", {"q": "Elsewhere"})
    assert cache.stats("weatherapi")["total_misses"] == 2


def test_stats_report_entries_per_service_and_operation(cache):
    cache.set(*PLACES, LOCATION, {"results": []}, 3600)
    cache.set(*PLACES, {**LOCATION, "radius": 1}, {"results": []}, 3600)
    cache.set("weatherapi", "current", {"q": "Seattle"}, {"temp_c": 9}, 3600)
    cache.get("weatherapi", "current", {"q": "Seattle"})

    stats = cache.stats()
    assert stats["total_entries"] == 3
    assert stats["total_hits"] == 1
    assert stats["services"]["google_places"]["operations"] == {"nearby_search": 2}
    assert stats["services"]["weatherapi"] == {"total_entries": 1, "total_hits": 1, "total_misses": 0,
                                               "operations": {"current": 1}}

    only_weather = cache.stats("weatherapi")
    assert list(only_weather["services"]) == ["weatherapi"]
    assert only_weather["total_entries"] == 1


def test_overwriting_an_entry_replaces_the_data(cache):
    cache.set(*PLACES, LOCATION, {"results": ["old"]}, 3600)
    cache.set(*PLACES, LOCATION, {"results": ["new"]}, 3600)
    assert cache.get(*PLACES, LOCATION) == {"results": ["new"]}
    assert cache.stats()["total_entries"] == 1


@pytest.mark.parametrize("ttl", [0, -1])
def test_non_positive_ttl_stores_nothing(cache, ttl):
    cache.set(*PLACES, LOCATION, {"results": []}, ttl)
    assert cache.get(*PLACES, LOCATION) is None
    assert cache.stats()["total_entries"] == 0


def test_unserialisable_data_is_not_cached(cache, caplog):
    cache.set(*PLACES, LOCATION, {"when": object()}, 3600)
    assert cache.get(*PLACES, LOCATION) is None
    assert "not JSON-serialisable" in caplog.text


def test_unserialisable_parameters_are_a_miss_and_not_stored(cache):
    params = {"location": {1, 2}}
    cache.set(*PLACES, params, {"results": []}, 3600)
    assert cache.get(*PLACES, params) is None
    assert cache.stats()["total_entries"] == 0


def test_mutating_a_returned_value_does_not_change_the_cache(cache):
    cache.set(*PLACES, LOCATION, {"results": [{"name": "Hospital"}]}, 3600)
    first = cache.get(*PLACES, LOCATION)
    first["results"].append({"name": "Injected"})
    assert cache.get(*PLACES, LOCATION) == {"results": [{"name": "Hospital"}]}


def test_scalar_and_list_data_round_trip(cache):
    cache.set("svc", "list", {}, [1, "two", None], 60)
    cache.set("svc", "text", {}, "plain", 60)
    assert cache.get("svc", "list", {}) == [1, "two", None]
    assert cache.get("svc", "text", {}) == "plain"
