"""Live progress through real processes: while a slow LLM call is held, the steps that finished before it are
visible through ``/api/v1/status`` and ``/api/v1/jobs`` (the client app's progress bar and monitor_job.bash read
them), and the running step is named."""
from __future__ import annotations

import time

CHAT = "/openai/v1/chat/completions"
BEFORE_LLM = 6  # emergency_contacts: 4 fetches and 2 formatting steps finish before generate_contacts


def test_finished_steps_are_visible_while_a_slow_llm_call_runs(stack_factory, fresh_sandbox):
    stack = stack_factory("progress")
    stack.start_worker("eventlet", 4)
    stack.start_api()
    stack.wait_for_workers()
    fresh_sandbox.add_fault(CHAT, "timeout", delay=4)  # answers normally after 4 s
    job_id = stack.submit(webhook=None)

    seen: dict | None = None
    end = time.monotonic() + 30
    while time.monotonic() < end and seen is None:
        status, job = stack.status(job_id), stack.job(job_id)
        if status["status"] in ("completed", "failed", "cancelled"):
            break
        if status["steps_completed"] == BEFORE_LLM and job["current_step_id"] == "generate_contacts":
            seen = {"status": status, "job": job, "llm_calls": len(_chat_requests(fresh_sandbox))}
        time.sleep(0.1)

    assert seen is not None, f"progress never showed the held LLM step: {stack.status(job_id)}"
    status, job = seen["status"], seen["job"]
    assert status["total_steps"] == 8 and status["current_step"] in {"format_places_data", "format_weather"}
    assert job["current_step_name"] == "Write the emergency plan"
    assert job["progress_percentage"] == 75 and job["status"] == "processing"
    assert stack.wait_terminal([job_id], 60)[job_id]["status"] == "completed"
    assert seen["llm_calls"] == 1 and len(_chat_requests(fresh_sandbox)) == 1  # it was seen *during* that call
    done = stack.job(job_id)
    assert done["progress_percentage"] == 100 and done["current_step_id"] == "parse_contacts"


def _chat_requests(sandbox) -> list[dict]:
    return [entry for entry in sandbox.requests() if entry["path"].startswith(CHAT)]
