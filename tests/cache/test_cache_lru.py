"""Old acceptance cases §12.2 #5-7 (the L1 LRU), plus the expiry the old L1 lacked."""
from __future__ import annotations

import threading

import pytest

from llm_service.cache.lru import LruTtlStore


def test_stored_value_is_returned_and_unknown_key_is_none(clock):
    store = LruTtlStore(5, clock)
    store.put("test_key", {"data": "test_value"}, 60)
    assert store.get("test_key") == {"data": "test_value"}
    assert store.get("unknown_key") is None


def test_inserting_beyond_capacity_evicts_the_least_recent(clock):
    store = LruTtlStore(3, clock)
    for name in ("key1", "key2", "key3", "key4"):
        store.put(name, name.upper(), 60)
    assert store.get("key1") is None
    assert [store.get(name) for name in ("key2", "key3", "key4")] == ["KEY2", "KEY3", "KEY4"]


def test_reading_an_entry_protects_it_from_eviction(clock):
    store = LruTtlStore(3, clock)
    for name in ("key1", "key2", "key3"):
        store.put(name, name, 60)
    assert store.get("key1") == "key1"
    store.put("key4", "key4", 60)
    assert store.get("key2") is None
    assert store.get("key1") == "key1"
    assert store.get("key4") == "key4"


def test_entries_expire_after_their_ttl(clock):
    store = LruTtlStore(5, clock)
    store.put("short", 1, 10)
    store.put("long", 2, 100)
    clock.advance(9.9)
    assert store.get("short") == 1
    clock.advance(0.1)
    assert store.get("short") is None
    assert store.get("long") == 2


def test_purge_expired_counts_and_frees_expired_entries(clock):
    store = LruTtlStore(5, clock)
    store.put("a", 1, 1)
    store.put("b", 2, 1)
    store.put("c", 3, 100)
    clock.advance(2)
    assert store.purge_expired() == 2
    assert len(store) == 1
    assert list(store.live_values()) == [3]


def test_non_positive_ttl_is_not_stored(clock):
    store = LruTtlStore(5, clock)
    store.put("zero", 1, 0)
    store.put("negative", 1, -5)
    assert len(store) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        LruTtlStore(0)


def test_concurrent_writers_never_exceed_capacity(clock):
    store = LruTtlStore(50, clock)

    def write(thread: int) -> None:
        for i in range(200):
            store.put(f"{thread}-{i}", i, 60)
            store.get(f"{thread}-{i // 2}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 50
    # Whichever thread wrote last, its final entry is among the 50 most recent.
    assert any(store.get(f"{n}-199") == 199 for n in range(8))
