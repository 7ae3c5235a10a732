"""Redis stopped and restarted (append-only persistence) with jobs queued and running.

The stack runs on a dedicated ``redis-server`` (``--appendonly yes``) on a free port, so the case can stop it with
SIGTERM (Redis flushes the AOF and exits, as under a service manager) and start it again on the same port and
directory without touching the machine's shared Redis."""
from __future__ import annotations

import time

import pytest
import requests

from tests.integration.stack import located_input
from tests.reliability.support import RedisServer, submit_many, terminal_events

CHAT = "/openai/v1/chat/completions"
OUTAGE_SECONDS = 6  # longer than the 3 s job lease, so recovery must not mistake live jobs for dead ones


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def _answers(stack, method, path, **kwargs):
    try:
        return stack.session.request(method, stack.api_url + path, timeout=10, **kwargs).status_code
    except requests.RequestException as exc:  # the API process itself must keep answering
        return f"no answer: {type(exc).__name__}"


def test_redis_restart_with_jobs_queued_and_running(private_redis, stack_factory, fresh_sandbox):
    """Fault: Redis (job store and broker) is stopped for ~6 s while 2 jobs are mid-run (their LLM call outlives
    the outage) and 3 wait in the queue, then started again from its append-only file. Expected: while it is down
    the API answers 503 (status, submit, health) without crashing; after the restart the API answers 200 again by
    itself, the worker reconnects (same process), all 5 jobs and one submitted afterwards complete, each exactly
    once and none re-run by crash recovery, and each gets one `workflow.completed` webhook."""
    stack = stack_factory("redis-outage", redis_url=private_redis.url)
    stack.start_api()
    stack.start_worker("eventlet", concurrency=2)
    stack.wait_for_workers()
    fresh_sandbox.add_fault(CHAT, "timeout", delay=OUTAGE_SECONDS + 4, count=2)
    jobs = submit_many(stack, 5, offset=500)
    stack.wait(lambda: fresh_sandbox.stats()["by_path"].get(CHAT, 0) >= 2, "2 jobs to be inside their LLM call", 60)
    before = {job_id: stack.status(job_id)["status"] for job_id in jobs}
    assert sorted(before.values()) == ["processing"] * 2 + ["queued"] * 3, before

    private_redis.stop()
    down_at = time.monotonic()
    probe = jobs[0]
    while time.monotonic() - down_at < OUTAGE_SECONDS:
        assert _answers(stack, "GET", f"/api/v1/status/{probe}") == 503
        assert _answers(stack, "POST", "/api/v1/workflow", json={
            "workflow_name": "emergency_contacts", "input_data": located_input(599)}) == 503
        assert _answers(stack, "GET", "/health") == 503
        time.sleep(0.5)

    private_redis.start()
    up_at = time.monotonic()
    stack.wait(lambda: _answers(stack, "GET", f"/api/v1/status/{probe}") == 200, "the API to recover", 30)
    api_recovery = time.monotonic() - up_at
    stack.wait(lambda: (stack.health() or {}).get("status") in ("healthy", "degraded"), "health to recover", 30)
    after = stack.submit(input_data=located_input(510))

    results = stack.wait_terminal([*jobs, after], timeout=60)
    assert stack.processes["worker"].poll() is None, "the worker exited instead of reconnecting"
    print(f"\n[redis outage] API answered again {api_recovery:.1f}s after Redis restarted; all jobs terminal "
          f"{time.monotonic() - up_at:.1f}s after it")
    assert {job_id: s["status"] for job_id, s in results.items()} == dict.fromkeys([*jobs, after], "completed")
    # the outage outlasted the 3 s lease, yet the live worker's jobs were not mistaken for dead ones and re-run
    assert {job_id: (stack.job(job_id)["recoveries"], stack.job(job_id)["attempts"]) for job_id in jobs} == \
        dict.fromkeys(jobs, (0, 1))
    for job_id in [*jobs, after]:
        stack.wait(lambda: stack.webhooks_for(job_id), f"the webhook of {job_id}", 60)
    time.sleep(2)
    endings = terminal_events(stack, [*jobs, after])
    assert all(statuses == ["completed"] for statuses in endings.values()), endings
    for job_id in [*jobs, after]:
        assert [d["json"]["event"] for d in stack.webhooks_for(job_id)] == ["workflow.completed"]
    assert stack.forbidden_log_lines() == []


def test_eventlet_hub_forgets_a_listener_whose_descriptor_was_refused():
    """Fault: a socket is closed before eventlet's hub registers its descriptor (what kombu's poller hits when
    Redis drops while jobs run). Expected: the registration fails with EBADF and leaves no listener behind, so the
    next attempt on the same descriptor number fails the same way instead of with eventlet's "Second simultaneous
    read" RuntimeError, which Celery treats as unrecoverable (the worker exited instead of reconnecting)."""
    import errno
    import os
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Eventlet is deprecated", on first import
        from eventlet import hubs

    from llm_service.tasks.bootstrap import drop_listener_on_refused_descriptor

    drop_listener_on_refused_descriptor()
    hub = type(hubs.get_hub())()
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    try:
        for _ in range(2):
            with pytest.raises(OSError) as caught:
                hub.add(hub.READ, read_end, lambda fd: None, lambda *exc: None, lambda fd: None)
            assert caught.value.errno == errno.EBADF
            assert read_end not in hub.listeners[hub.READ]
    finally:
        hub.poll.close()
