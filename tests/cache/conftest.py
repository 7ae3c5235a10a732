"""Fixtures for the cache tests: a real Redis (db 15) under a unique key prefix, a dead Redis, a fake clock."""
from __future__ import annotations

import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class FakeClock:
    """A clock tests move by hand, so expiry is tested without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_client():
    client = redis.Redis(host="127.0.0.1", port=6379, db=15)
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client):
    prefix = f"test-cache-{uuid.uuid4().hex}"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def dead_redis():
    """A client for a port nobody listens on; no retries so the failing calls return at once."""
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    yield client
    client.close()
