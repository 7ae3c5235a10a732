"""Shared fixtures: the repository's paths, the old service's fixture workflows, and an engine wired to the real
integrations (requests intercepted by ``responses``, so no test reaches the internet)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support import REPO, TEST_KEYS, UPSTREAM, shared_dir


@pytest.fixture
def original_fixture() -> Path:
    """The old service's real workflow root (definitions/ + prompts/), used unmodified and read in place."""
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared (the old service's fixtures) is not present next to the repository; "
                    "set LLM_SHARED_DIR to run the compatibility tests")
    return shared / "fixtures" / "original"


@pytest.fixture
def make_config() -> Callable[..., Any]:
    """A Config as the environment would give it, with test keys and upstreams that only `responses` answers."""
    from llm_service.config import Config

    def build(**overrides: Any) -> Config:
        env = {**TEST_KEYS, **UPSTREAM, "WORKFLOWS_DIR": str(REPO / "workflows")}
        env.update({k: str(v) for k, v in overrides.pop("env", {}).items()})
        return Config.from_env(env).with_overrides(**overrides)
    return build


@pytest.fixture
def make_engine(make_config: Callable[..., Any]) -> Callable[..., Any]:
    """``make_engine(workflows_dir=..., **engine_kwargs)`` -> Engine with real integrations and in-process
    cache/limits. Wrap calls in ``responses`` to answer the upstream requests."""
    from llm_service import services
    from llm_service.http import build_http_client

    built: list[Any] = []

    def build(workflows_dir: Path | str | None = None, *, config: Any = None, **engine_kwargs: Any) -> Any:
        cfg = config or make_config()
        if workflows_dir is not None:
            cfg = cfg.with_overrides(workflows_dir=str(workflows_dir))
        http = build_http_client(cfg)
        built.append(http)
        engine = services.build_engine(cfg, http=http, redis_client=None)
        for key, value in engine_kwargs.items():
            setattr(engine, key, value)
        return engine

    yield build
    for http in built:
        http.close()


@pytest.fixture
def redis_prefix():
    """A unique key prefix in Redis db 15, deleted after the test."""
    import uuid

    import redis

    value = f"test:{uuid.uuid4().hex[:12]}"
    yield value
    cleaner = redis.Redis(host="127.0.0.1", port=6379, db=15)
    keys = list(cleaner.scan_iter(match=f"{value}:*", count=1000))
    if keys:
        cleaner.delete(*keys)
    cleaner.close()


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=15, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def dead_redis():
    """A client for a port nobody listens on; no retries, so failing calls return at once."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    yield client
    client.close()


@pytest.fixture
def clock():
    from tests.support import EpochClock

    return EpochClock()


class RecordingQueue:
    """A JobQueue that records what was published (and can be told to fail)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, int]] = []
        self.webhooks: list[tuple[str, str, int]] = []
        self.revoked: list[str] = []
        self.fail = False
        self.worker_count: int | None = 1
        self.waiting: int | None = None  # what backlog() answers (None = unknown)

    def pending_push(self, job_id: str, *, priority: int) -> None:
        return None  # publishes through enqueue

    def enqueue(self, job_id: str, *, priority: int) -> None:
        self._check()
        self.jobs.append((job_id, priority))

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        self._check()
        self.webhooks.append((job_id, event, attempt))

    def revoke(self, job_id: str) -> None:
        self.revoked.append(job_id)

    def workers(self, timeout: float = 1.0) -> int | None:
        return self.worker_count

    def backlog(self) -> int | None:
        return self.waiting

    def _check(self) -> None:
        if self.fail:
            from llm_service.jobs.queue import QueueUnavailable

            raise QueueUnavailable("broker down (test)")


@pytest.fixture
def recording_queue() -> RecordingQueue:
    return RecordingQueue()


def pytest_collection_modifyitems(items):
    """Tests that start real worker/API processes are marked (and skipped when no redis-server can be started)."""
    for item in items:
        path = str(item.fspath)
        if "tests/integration" in path or "tests/reliability" in path:
            item.add_marker(pytest.mark.integration)
            if "tests/reliability" in path:
                item.add_marker(pytest.mark.reliability)
            if shutil.which("redis-server") is None:
                item.add_marker(pytest.mark.skip(reason="needs redis-server"))
