"""Fixtures for the worker runtime tests: a runtime over real Redis with a fake upstream, and a gate that holds
an upstream call until released."""
from __future__ import annotations

import threading

import pytest

from llm_service.config import Config
from llm_service.engine.errors import UpstreamServerError, WorkflowCancelled
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.services import Services
from llm_service.tasks.runtime import WorkerRuntime
from tests.engine.fakes import FakeService, api_step, make_engine, write_workflow


class Gate:
    """An upstream call that blocks until released or cancelled (as the HTTP helper does)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, params, *, timeout, cancel=None):
        self.entered.set()
        while not self.release.wait(0.01):
            if cancel is not None and cancel.is_cancelled():
                raise WorkflowCancelled("Cancelled while waiting for fake")
        return {"released": True}


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def runtime(tmp_path, redis_client, redis_prefix, recording_queue, gate):
    def broken(params, **_):
        raise UpstreamServerError("Server error (500): down")

    write_workflow(tmp_path, {"name": "ok", "steps": [api_step("a", params={"x": "${input.x}"})]})
    write_workflow(tmp_path, {"name": "slow", "steps": [api_step("wait", "gate"), api_step("after")]})
    write_workflow(tmp_path, {"name": "bad", "steps": [api_step("a", "broken")]})
    write_workflow(tmp_path, {"name": "then_slow", "steps": [api_step("first"), api_step("wait", "gate")]})
    engine = make_engine(tmp_path, FakeService("fake", echo=lambda p, **_: dict(p), gate=gate, broken=broken))
    config = Config(redis_key_prefix=redis_prefix, job_lease_seconds=0.3, sweeper_interval_seconds=0.05,
                    webhook_secret="global-secret-value", webhook_allow_private_networks=True)
    store = JobStore(redis_client, prefix=redis_prefix)
    http = HttpClient(pool_size=4, user_agent="test", allow_private_networks=True)
    services = Services(config=config, http=http, redis=redis_client, engine=engine, extras={"store": store})
    rt = WorkerRuntime(config, services=services, queue=recording_queue)
    yield rt
    http.close()
