"""Fixtures for the observability tests: fresh metric registries, a worker runtime whose engine reports through
the metrics observer (real Redis, db 15, this test's prefix), a JSON log capture, and the API test fixtures
(re-exported from tests/api/conftest.py, not copied)."""
from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any, Callable, Iterator

import pytest

from llm_service.cache import MemoryCache
from llm_service.config import Config
from llm_service.engine.errors import UpstreamServerError
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.logs import JsonFormatter
from llm_service.observability import MetricsObserver, WorkerMetrics, new_registry
from llm_service.services import Services
from llm_service.tasks.runtime import WorkerRuntime
from tests.api.conftest import api, make_api, prefix, unreachable_services, workflows_dir  # noqa: F401
from tests.engine.fakes import FakeService, api_step, make_engine, step, write_workflow

HOOK = "https://hooks.example.test/receive"
SECRET_INPUT = "private-input-7f3a9c"  # must never reach a label or a log event


def broken(params: Any, **_: Any) -> Any:
    raise UpstreamServerError(f"Server error (500): down while handling {params.get('x')}", status_code=500)


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics(new_registry())


@pytest.fixture
def runtime(tmp_path, redis_client, redis_prefix, recording_queue, metrics) -> Iterator[WorkerRuntime]:
    """Workflows: ``cached`` (one external API step with a 60 s cache) and ``bad`` (its upstream answers 500)."""
    write_workflow(tmp_path, {"name": "cached", "steps": [
        step("fetch", "external_api", {"service": "fake", "method": "echo", "parameters": {"x": "${input.x}"},
                                       "cache_ttl": 60})]})
    write_workflow(tmp_path, {"name": "bad", "steps": [api_step("call", "broken", {"x": "${input.x}"})]})
    engine = make_engine(tmp_path, FakeService("fake", echo=lambda p, **_: dict(p), broken=broken),
                         cache=MemoryCache(), observer=MetricsObserver(metrics))
    config = Config(redis_key_prefix=redis_prefix, job_lease_seconds=0.05, sweeper_interval_seconds=0.05,
                    webhook_secret="global-secret-value", webhook_allow_private_networks=True)
    http = HttpClient(pool_size=2, user_agent="test", allow_private_networks=True)
    services = Services(config=config, http=http, redis=redis_client, engine=engine,
                        extras={"store": JobStore(redis_client, prefix=redis_prefix)})
    yield WorkerRuntime(config, services=services, queue=recording_queue, metrics=metrics)
    http.close()


@pytest.fixture
def submit(runtime: WorkerRuntime) -> Callable[..., str]:
    def create(workflow: str = "cached", **fields: Any) -> str:
        job_id = str(uuid.uuid4())
        runtime.store.create({"job_id": job_id, "workflow_name": workflow, "input_data": {"x": SECRET_INPUT},
                              "webhook_url": HOOK, **fields})
        return job_id
    return create


class LogCapture:
    """Every record of the ``llm_service`` loggers, formatted by the production JsonFormatter."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line]

    def events(self, name: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in self.lines()]
        return [e for e in parsed if "event" in e and (name is None or e["event"] == name)]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("llm_service")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(handler)
    logger.setLevel(previous)
