"""Constants, workflow definitions and helpers shared by the API tests."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from llm_service.jobs import JobStore
from llm_service.jobs.queue import QueueUnavailable

REDIS_URL = "redis://127.0.0.1:6379/15"
SECRET = "test-api-secret-0123456789"
AUTH = {"X-API-Secret": SECRET}
HOOK = "https://hooks.example.com/done"

GREETING = {
    "name": "greeting", "version": "1.2.0", "description": "Greets someone",
    "inputs": [{"name": "person", "type": "string", "required": True}],
    "steps": [
        {"id": "compose", "type": "llm",
         "config": {"model": "openai/gpt-4o-mini", "prompt_template": "greet.md",
                    "variables": {"name": "${input.person}"}}},
        {"id": "shout", "type": "transform",
         "config": {"operation": "template", "config": {"template": "Said: ${steps.compose.content}"}}},
    ],
}
BROKEN_REFERENCE = {
    "name": "broken_reference", "version": "0.1.0",
    "steps": [{"id": "only", "type": "transform",
               "config": {"operation": "template", "config": {"template": "${steps.nowhere.content}"}}}],
}
MISSING_PROMPT = {
    "name": "missing_prompt",
    "steps": [{"id": "ask", "type": "llm", "config": {"prompt_template": "does-not-exist.md"}}],
}
NO_STEPS = {"name": "no_steps", "steps": []}


def fresh_idempotency_key(case: Any) -> None:
    """Give a generated request its own Idempotency-Key: a key reused with another body is refused (422) by
    design, a state a stateless fuzzer cannot foresee; malformed keys are covered by test_api_idempotency."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


class FakeQueue:
    """Records every call; ``fail_enqueue`` / ``fail_webhooks`` make publishing raise QueueUnavailable."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, int]] = []
        self.revoked: list[str] = []
        self.webhooks: list[tuple[str, str]] = []
        self.ping_timeouts: list[float] = []
        self.fail_enqueue = False
        self.fail_webhooks = False
        self.worker_count: int | None = 1

    def pending_push(self, job_id: str, *, priority: int) -> None:
        return None  # publishes through enqueue

    def enqueue(self, job_id: str, *, priority: int) -> None:
        if self.fail_enqueue:
            raise QueueUnavailable("broker down")
        self.enqueued.append((job_id, priority))

    def revoke(self, job_id: str) -> None:
        self.revoked.append(job_id)

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        if self.fail_webhooks:
            raise QueueUnavailable("broker down")
        self.webhooks.append((job_id, event))

    def workers(self, timeout: float = 1.0) -> int | None:
        self.ping_timeouts.append(timeout)
        return self.worker_count


def write_workflows(root: Path) -> Path:
    definitions, prompts = root / "definitions", root / "prompts"
    definitions.mkdir(parents=True)
    prompts.mkdir()
    (prompts / "greet.md").write_text("Write a one-line greeting for ${name}.", encoding="utf-8")
    for document in (GREETING, BROKEN_REFERENCE, MISSING_PROMPT, NO_STEPS):
        (definitions / f"{document['name']}.json").write_text(json.dumps(document), encoding="utf-8")
    (definitions / "garbled.json").write_text("{not json", encoding="utf-8")
    return root


class StepClock:
    """Epoch seconds that advance by one millisecond per call, for a deterministic creation order."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def drive(store: JobStore, job_id: str, target: str, **finish: Any) -> str | None:
    """Move a fresh queued job to ``target`` with the store's own transitions; returns the lease token if any."""
    if target == "queued":
        return None
    if target == "cancelled":
        assert store.cancel(job_id) == "cancelled"
        return None
    claim = store.claim(job_id, worker_id="worker-1", lease_seconds=60)
    assert claim.outcome == "claimed"
    if target != "processing":
        finish.setdefault("result", {"workflow_name": "greeting", "success": target == "completed", "output": 1})
        finish.setdefault("error", None)
        finish.setdefault("error_message", None)
        assert store.finish(job_id, claim.token, status=target, **finish)
    return claim.token


def new_job(store: JobStore, status: str = "queued", **fields_: Any) -> str:
    record = store.create({"workflow_name": "greeting", "workflow_version": "1.2.0", **fields_})
    drive(store, record["job_id"], status)
    return record["job_id"]


def envelope(detail: dict) -> dict:
    """An error body as the API sends it: ``detail`` (the old service's clients) and the same code and text at the
    top level (the client app's library and admin pages read those)."""
    return {"detail": detail, "error": detail["error"], "message": detail["message"]}
