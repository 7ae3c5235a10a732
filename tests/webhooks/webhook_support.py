"""Shared helpers for the webhook tests: a job record factory and an in-memory fake of the job store."""
from __future__ import annotations

import copy

JOB_SECRET = "job-secret-0123456789"
GLOBAL_SECRET = "global-secret-abcdefgh"
WEBHOOK_URL = "https://hooks.example.test/receive"


def make_job(**overrides) -> dict:
    """A terminal job record with the JOBSTORE_CONTRACT fields the webhook code reads."""
    job = {
        "job_id": "0b7c2a8e-2f7d-4c1e-9d3a-5a4b3c2d1e0f",
        "workflow_name": "emergency_contacts",
        "status": "completed",
        "user_id": "user-42",
        "webhook_url": WEBHOOK_URL,
        "webhook_secret": JOB_SECRET,
        "input_data": {"city": "Springfield"},
        "created_at": "2026-11-28T10:00:00.000Z",
        "started_at": "2026-11-28T10:00:01.000Z",
        "completed_at": "2026-11-28T10:00:25.500Z",
        "duration_ms": 24500,
        "result": {
            "success": True,
            "output": {"contacts": []},
            "metadata": {"total_tokens": 1234, "total_cost_usd": 0.012345,
                         "llm_calls": [{"provider": "openrouter", "model": "m", "cost_usd": 0.012345}]},
        },
        "error_message": None,
        "error": None,
        "webhook_event": "workflow.completed",
        "webhook_state": "pending",
        "webhook_attempts": 0,
        "webhook_next_attempt_at": None,
        "webhook_permanently_failed": False,
        "total_tokens": 1234,
        "total_cost_usd": 0.012345,
    }
    job.update(overrides)
    return job


class FakeStore:
    """Just the JobStore methods the webhook code calls, with the contract's semantics."""

    def __init__(self, *jobs: dict) -> None:
        self.jobs = {job["job_id"]: copy.deepcopy(job) for job in jobs}
        self.attempts: dict[str, list[dict]] = {job_id: [] for job_id in self.jobs}
        self.due: dict[str, float] = {}
        self.locks: dict[str, float] = {}

    def get(self, job_id: str) -> dict | None:
        job = self.jobs.get(job_id)
        return copy.deepcopy(job) if job is not None else None

    def record_webhook_attempt(self, job_id: str, attempt: dict) -> None:
        self.attempts[job_id].append(copy.deepcopy(attempt))
        self.jobs[job_id]["webhook_attempts"] = len(self.attempts[job_id])

    def set_webhook_state(self, job_id: str, state: str, *, next_attempt_at: float | None = None,
                          permanently_failed: bool = False) -> None:
        job = self.jobs[job_id]
        job["webhook_state"] = state
        job["webhook_next_attempt_at"] = next_attempt_at
        if permanently_failed:
            job["webhook_permanently_failed"] = True
        if state == "pending" and next_attempt_at is not None:
            self.due[job_id] = next_attempt_at
        elif state in ("delivered", "failed"):
            self.due.pop(job_id, None)

    def try_lock(self, name: str, ttl_seconds: float) -> bool:
        if name in self.locks:
            return False
        self.locks[name] = ttl_seconds
        return True
