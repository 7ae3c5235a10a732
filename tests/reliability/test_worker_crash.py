"""Worker killed with SIGKILL mid-job, then restarted.

Leases are short here (JOB_LEASE_SECONDS=3, heartbeat 1 s, sweeper every 1 s, the Stack's defaults) so recovery
happens within seconds; every LLM call hangs until the kill, so the jobs are provably mid-run when it lands."""
from __future__ import annotations

import time

from tests.reliability.support import log_events, submit_many, terminal_events

CHAT = "/openai/v1/chat/completions"
RUNNING, QUEUED = 4, 2


def _kill_mid_job(stack, sandbox, offset):
    """Submit RUNNING + QUEUED jobs to a worker of concurrency RUNNING whose LLM calls hang, SIGKILL it once every
    running job is inside its LLM call; returns (all job ids, the ones that were running, kill time)."""
    sandbox.add_fault(CHAT, "timeout", delay=120, count=-1)
    jobs = submit_many(stack, RUNNING + QUEUED, offset=offset)
    stack.wait(lambda: sandbox.stats()["by_path"].get(CHAT, 0) >= RUNNING, "every running job to reach its LLM call",
               60)
    statuses = {job_id: stack.status(job_id)["status"] for job_id in jobs}
    running = [job_id for job_id, status in statuses.items() if status == "processing"]
    assert len(running) == RUNNING and list(statuses.values()).count("queued") == QUEUED, statuses
    stack.kill("worker")
    killed_at = time.monotonic()
    sandbox.clear_faults()
    return jobs, running, killed_at


def _assert_one_ending_and_one_webhook(stack, events):
    """Each job (``{job_id: expected webhook event}``) logged exactly one terminal transition and got exactly one
    webhook (checked again a few seconds after the last one arrived, so a late duplicate would be seen)."""
    for job_id in events:
        stack.wait(lambda: stack.webhooks_for(job_id), f"the webhook of {job_id}", 30)
    time.sleep(3)
    endings = terminal_events(stack, events)
    assert all(len(statuses) == 1 for statuses in endings.values()), endings
    for job_id, event in events.items():
        deliveries = stack.webhooks_for(job_id)
        assert [d["json"]["event"] for d in deliveries] == [event], deliveries
        assert deliveries[0]["signature_valid"] is True
        record = stack.session.get(f"{stack.api_url}/api/v1/jobs/{job_id}/webhooks", timeout=10).json()
        assert record["state"] == "delivered" and len(record["attempts"]) == 1, record


def test_sigkill_mid_job_then_restart_every_job_completes_once(stack_factory, fresh_sandbox):
    """Fault: the worker is SIGKILLed while 4 jobs are mid-run (inside their LLM call) and 2 more wait in the queue;
    a new worker starts. Expected: within 60 s all 6 jobs are `completed`; the 4 interrupted ones were re-queued
    once by the sweeper (`recoveries` 1, `attempts` 2); no job logs a second completion and every job gets exactly
    one `workflow.completed` webhook."""
    stack = stack_factory("sigkill")
    stack.start_api()
    stack.start_worker("eventlet", concurrency=RUNNING)
    stack.wait_for_workers()
    jobs, running, killed_at = _kill_mid_job(stack, fresh_sandbox, offset=400)

    stack.restart_worker()
    results = stack.wait_terminal(jobs, timeout=60)
    recovery_seconds = time.monotonic() - killed_at
    print(f"\n[sigkill] all {len(jobs)} jobs terminal {recovery_seconds:.1f}s after the kill")

    assert {job_id: s["status"] for job_id, s in results.items()} == dict.fromkeys(jobs, "completed")
    for job_id in jobs:
        job = stack.job(job_id)
        assert job["result"]["output"]["contacts"], job
        expected = (1, 2) if job_id in running else (0, 1)
        assert (job["recoveries"], job["attempts"]) == expected, (job_id, job["recoveries"], job["attempts"])
    recovered = log_events(stack, "job.recovered")
    assert sorted(e["job_id"] for e in recovered) == sorted(running)
    assert {e["outcome"] for e in recovered} == {"requeued"}
    _assert_one_ending_and_one_webhook(stack, dict.fromkeys(jobs, "workflow.completed"))
    assert stack.forbidden_log_lines() == []


def test_sigkill_after_recovery_limit_fails_the_job_once(stack_factory, fresh_sandbox):
    """Fault: as above, but the restarted worker runs with JOB_MAX_RECOVERIES=0 (no re-runs allowed).
    Expected: the 4 interrupted jobs end `failed` with error type `WorkerLost` (category SYSTEM_ERROR,
    retryable true) and one `workflow.failed` webhook each; the 2 queued ones still run and complete."""
    stack = stack_factory("sigkill-limit")
    stack.start_api()
    stack.start_worker("eventlet", concurrency=RUNNING)
    stack.wait_for_workers()
    jobs, running, killed_at = _kill_mid_job(stack, fresh_sandbox, offset=420)

    stack.restart_worker(JOB_MAX_RECOVERIES="0")
    results = stack.wait_terminal(jobs, timeout=60)
    seconds = time.monotonic() - killed_at
    print(f"\n[sigkill, no recoveries] all {len(jobs)} jobs terminal {seconds:.1f}s after the kill")

    for job_id, status in results.items():
        if job_id in running:
            assert status["status"] == "failed", status
            error = stack.job(job_id)["error"]
            assert (error["type"], error["category"], error["retryable"]) == ("WorkerLost", "SYSTEM_ERROR", True)
            assert "used its 0 automatic re-run(s)" in status["error_message"], status
        else:
            assert status["status"] == "completed", status
    _assert_one_ending_and_one_webhook(stack, {job_id: "workflow.failed" if job_id in running else "workflow.completed"
                                               for job_id in jobs})
    assert stack.forbidden_log_lines() == []

