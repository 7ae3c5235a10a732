"""Old acceptance cases §12.2 #1-4, plus the exact key format (kept identical to the old service)."""
from __future__ import annotations

import hashlib

import pytest

from llm_service.cache import cache_key


def test_same_inputs_give_the_same_key():
    params = {"location": "47.6,-122.3", "radius": 5000, "type": "hospital"}
    assert cache_key("google_places", "nearby_search", params) == cache_key(
        "google_places", "nearby_search", dict(params))


def test_a_changed_value_gives_a_different_key():
    base = {"location": "47.6,-122.3", "radius": 5000}
    assert cache_key("google_places", "nearby_search", base) != cache_key(
        "google_places", "nearby_search", {**base, "radius": 10000})


def test_parameter_order_does_not_matter_even_when_nested():
    first = {"location": "47.6,-122.3", "radius": 5000, "filter": {"open": True, "kind": "er"}}
    second = {"filter": {"kind": "er", "open": True}, "radius": 5000, "location": "47.6,-122.3"}
    assert cache_key("google_places", "nearby_search", first) == cache_key("google_places", "nearby_search", second)


def test_key_is_64_lowercase_hex_characters():
    key = cache_key("weatherapi", "current", {"q": "Seattle"})
    assert len(key) == 64
    assert all(ch in "0123456789abcdef" for ch in key)


def test_key_is_sha256_of_service_operation_and_canonical_json():
    key = cache_key("weatherapi", "forecast", {"q": "Zürich", "days": 3, "opts": {"b": 1, "a": [2, 1]}})
    canonical = '{"days":3,"opts":{"a":[2,1],"b":1},"q":"Z\\u00fcrich"}'
    assert key == hashlib.sha256(f"weatherapi|forecast|{canonical}".encode()).hexdigest()


def test_service_and_operation_are_part_of_the_key():
    params = {"q": "Seattle"}
    keys = {cache_key("weatherapi", "current", params), cache_key("weatherapi", "forecast", params),
            cache_key("other", "current", params)}
    assert len(keys) == 3


def test_unserialisable_parameters_are_refused():
    with pytest.raises(TypeError):
        cache_key("weatherapi", "current", {"q": object()})
