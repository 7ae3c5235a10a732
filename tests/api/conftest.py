"""Fixtures for the HTTP API tests: a Flask test client over real Redis (db 15, a unique key prefix per test), an
in-memory job queue that records calls, and a temporary workflows directory with a few definitions."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from llm_service.jobs import JobStore
from tests.api.support import AUTH, REDIS_URL, SECRET, FakeQueue, write_workflows


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"test-api:{uuid.uuid4().hex}"
    yield value
    cleaner = redis.Redis.from_url(REDIS_URL)
    keys = list(cleaner.scan_iter(match=f"{value}:*", count=1000))
    if keys:
        cleaner.delete(*keys)
    cleaner.close()


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    return write_workflows(tmp_path / "workflows")


@dataclass
class Api:
    app: Any
    client: Any
    queue: FakeQueue
    services: Any
    config: Any
    built: list = field(default_factory=list)

    @property
    def store(self) -> JobStore:
        return self.services.store

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)

    def job_keys(self) -> list[bytes]:
        return list(self.services.redis.scan_iter(match=f"{self.config.redis_key_prefix}:job:*", count=1000))


@pytest.fixture
def make_api(make_config: Callable[..., Any], prefix: str, workflows_dir: Path) -> Iterator[Callable[..., Api]]:
    """``make_api(**config_overrides, services=None)``: an app on Redis db 15 under this test's prefix.
    Webhook URLs to private networks are allowed unless overridden, so no test resolves a host name."""
    from llm_service import services as wiring
    from llm_service.api import create_app

    made: list[Any] = []

    def build(*, services: Any = None, queue: FakeQueue | None = None, **overrides: Any) -> Api:
        settings = dict(api_secret=SECRET, redis_url=REDIS_URL, redis_key_prefix=prefix,
                        workflows_dir=str(workflows_dir), webhook_allow_private_networks=True)
        settings.update(overrides)
        config = make_config(**settings)
        if services is None:
            services = wiring.build(config)
            made.append(services)
        queue = queue or FakeQueue()
        app = create_app(config, services=services, queue=queue)
        return Api(app=app, client=app.test_client(), queue=queue, services=services, config=config)

    yield build
    for services in made:
        services.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def unreachable_services(make_config: Callable[..., Any], prefix: str, workflows_dir: Path) -> Iterator[Any]:
    """Services whose Redis client points at a closed port, failing fast (no retries, short timeouts)."""
    from llm_service.http import build_http_client
    from llm_service.services import Services, build_engine

    config = make_config(api_secret=SECRET, redis_url="redis://127.0.0.1:1/15", redis_key_prefix=prefix,
                         workflows_dir=str(workflows_dir), webhook_allow_private_networks=True)
    client = redis.Redis(host="127.0.0.1", port=1, db=15, socket_connect_timeout=0.5, socket_timeout=0.5,
                         retry=Retry(NoBackoff(), 0))
    http = build_http_client(config)
    services = Services(config=config, http=http, redis=client,
                        engine=build_engine(config, http=http, redis_client=None))
    yield services
    services.close()
