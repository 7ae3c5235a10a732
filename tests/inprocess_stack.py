"""The whole service in one process: the Flask API and the worker runtime over real Redis (db 15, the test's key
prefix), the real HttpClient, and an in-process sandbox upstream (fake WeatherAPI, Places, chat API and webhook
receiver) that faults can be injected into. Jobs are submitted through the API, run with ``WorkerRuntime.run_job``
and their webhooks delivered with ``WorkerRuntime.deliver_webhook``; Celery is not involved (the
``recording_queue`` stands in for the broker). Conftests that want it import its fixtures (``sandbox``,
``make_stack``)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llm_service.sandbox import SandboxServer

API_SECRET = "api-secret-canary-4be1f07c93d2a8e65f10"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def write_root(root: Path, definitions: list[dict], prompts: dict[str, str] | None = None) -> Path:
    """A workflows root: ``definitions/<name>.json`` for each definition and the given prompt files."""
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(exist_ok=True)
    for definition in definitions:
        (root / "definitions" / f"{definition['name']}.json").write_text(json.dumps(definition), encoding="utf-8")
    for rel, text in (prompts or {}).items():
        path = root / "prompts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@dataclass
class Stack:
    sandbox: SandboxServer
    config: Any
    services: Any
    app: Any
    queue: Any
    runtime: Any
    root: Path
    auth: dict
    ran: list[str] = field(default_factory=list)
    delivered: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def client(self) -> Any:
        return self.app.test_client()

    @property
    def store(self) -> Any:
        return self.services.store

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers={**self.auth, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers={**self.auth, **kwargs.pop("headers", {})}, **kwargs)

    def submit(self, workflow: str, input_data: dict | None = None, **fields_: Any) -> str:
        response = self.post("/api/v1/workflow", json={"workflow_name": workflow, "input_data": input_data or {},
                                                       **fields_})
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.get_json()["job_id"]

    def run(self, job_id: str) -> dict:
        """Run one queued job in this thread, as a worker would."""
        self.ran.append(job_id)
        return self.runtime.run_job(job_id)

    def deliver_pending_webhooks(self) -> list[dict]:
        """Make every webhook attempt the runtime has dispatched and not yet made, retries included."""
        outcomes = []
        while True:
            due = [hook for hook in self.queue.webhooks if hook not in self.delivered]
            if not due:
                return outcomes
            for job_id, event, attempt in due:
                self.delivered.append((job_id, event, attempt))
                outcome = self.runtime.deliver_webhook(job_id, event, attempt)
                outcomes.append(outcome)
                if outcome["outcome"] == "retry":  # the countdown task a broker would deliver later
                    self.queue.webhooks.append((job_id, event, attempt + 1))


@pytest.fixture
def make_stack(make_config: Callable[..., Any], redis_prefix: str, recording_queue: Any, sandbox: SandboxServer,
               tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(definitions, prompts=None, env=None, **config_overrides)``.

    ``env`` is read through ``Config.from_env`` (so secrets arrive the way production reads them); the upstream
    base URLs point at the sandbox and webhooks to the sandbox (on 127.0.0.1) are allowed.
    """
    from llm_service import services as wiring
    from llm_service.api import create_app
    from llm_service.tasks.runtime import WorkerRuntime

    built: list[Any] = []

    def build(definitions: list[dict], prompts: dict[str, str] | None = None, env: dict[str, str] | None = None,
              **overrides: Any) -> Stack:
        root = write_root(tmp_path / "workflows", definitions, prompts)
        settings = {**sandbox.base_urls(), "LLM_API_SECRET": API_SECRET, "REDIS_URL": "redis://127.0.0.1:6379/15",
                    "REDIS_KEY_PREFIX": redis_prefix, "WORKFLOWS_DIR": str(root),
                    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "LLM_WEBHOOK_SECRET": "global-webhook-secret-0000",
                    **(env or {})}
        config = make_config(env=settings, **overrides)
        services = wiring.build(config)
        built.append(services)
        app = create_app(config, services=services, queue=recording_queue)
        runtime = WorkerRuntime(config, services=services, queue=recording_queue)
        return Stack(sandbox=sandbox, config=config, services=services, app=app, queue=recording_queue,
                     runtime=runtime, root=root, auth={"X-API-Secret": config.api_secret})

    yield build
    for services in built:
        services.close()
