"""Helpers shared by the worker runtime tests."""
from __future__ import annotations

import threading
import uuid

from llm_service.tasks.runtime import WorkerRuntime

HOOK = "https://hooks.example.test/receive"


def submit(rt: WorkerRuntime, workflow: str = "ok", **fields) -> str:
    job_id = str(uuid.uuid4())
    rt.store.create({"job_id": job_id, "workflow_name": workflow, "input_data": {"x": 1}, "webhook_url": HOOK,
                     **fields})
    return job_id


def run_in_thread(runtime, job_id):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(runtime.run_job(job_id)))
    thread.start()
    return thread, outcome
