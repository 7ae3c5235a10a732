"""The old service's release checklist, run against real processes: an eventlet worker (and the threads and
gevent pools), the API under gunicorn, the sandbox upstream, real Redis.

Checklist (original-service.md §11 and task-048): a job submitted right after the worker starts completes; 3,
then 50, jobs submitted at once all complete; 10 jobs in a row complete; webhooks arrive with valid signatures;
cancel works on a queued and on a running job; no "Event loop is closed", "another loop is running",
"MaxConnectionsError" or "Couldn't ack" in any log."""
from __future__ import annotations

import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.stack import located_input


def submit_many(stack, count, offset=0):
    with ThreadPoolExecutor(max_workers=min(count, 25)) as pool:
        return list(pool.map(lambda i: stack.submit(input_data=located_input(offset + i)), range(count)))


def assert_completed(results):
    failed = {j: (s["status"], s.get("error_message")) for j, s in results.items() if s["status"] != "completed"}
    assert not failed, failed
    for status in results.values():
        assert status["result"]["output"]["contacts"], status


def assert_signed_webhooks(stack, job_ids):
    for job_id in job_ids:
        stack.wait(lambda: stack.webhooks_for(job_id), f"the webhook of {job_id}", 30)
        deliveries = stack.webhooks_for(job_id)
        assert len(deliveries) == 1, deliveries
        assert deliveries[0]["signature_valid"] is True and deliveries[0]["standard_signature_valid"] is True
        assert deliveries[0]["json"]["event"] == "workflow.completed"


def test_release_checklist_under_eventlet(stack_factory, fresh_sandbox):
    stack = stack_factory("eventlet")
    stack.start_api()
    stack.start_worker("eventlet", concurrency=50)
    first = stack.submit(input_data=located_input(0))  # before the worker has even finished starting
    assert_completed(stack.wait_terminal([first], timeout=90))

    three = submit_many(stack, 3, offset=1)
    assert_completed(stack.wait_terminal(three))
    fifty = submit_many(stack, 50, offset=10)
    assert_completed(stack.wait_terminal(fifty, timeout=180))

    in_a_row = []
    for i in range(10):
        job_id = stack.submit(input_data=located_input(100 + i))
        assert_completed(stack.wait_terminal([job_id]))
        in_a_row.append(job_id)

    assert_signed_webhooks(stack, [first, *three, *fifty, *in_a_row])
    assert stack.forbidden_log_lines() == []


def test_cancel_a_queued_and_a_running_job(stack_factory, fresh_sandbox):
    stack = stack_factory("cancel")
    stack.start_api()
    stack.start_worker("eventlet", concurrency=1)
    stack.wait_for_workers()
    fresh_sandbox.add_fault("/openai/v1/chat/completions", "timeout", delay=30, count=1)  # the LLM call hangs

    running = stack.submit(input_data=located_input(200))
    stack.wait_status(running, "processing")
    queued = stack.submit(input_data=located_input(201))
    time.sleep(0.5)
    assert stack.status(queued)["status"] == "queued"

    response = stack.cancel(queued)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    response = stack.cancel(running)
    assert response.status_code == 202 and response.json()["status"] == "cancelling"

    results = stack.wait_terminal([running, queued], timeout=30)
    assert results[running]["status"] == "cancelled" and results[queued]["status"] == "cancelled"
    assert stack.cancel(running).status_code == 409
    for job_id in (running, queued):
        stack.wait(lambda: stack.webhooks_for(job_id), "the cancelled webhook", 20)
        assert [w["json"]["event"] for w in stack.webhooks_for(job_id)] == ["workflow.cancelled"]
    # the queued job never ran: no step of it was recorded
    assert stack.job(queued)["steps"] == []
    assert stack.forbidden_log_lines() == []


def test_higher_priority_runs_sooner(stack_factory, fresh_sandbox):
    stack = stack_factory("priority")
    stack.start_api()
    jobs = {priority: stack.submit("hello", {"name": f"p{priority}"}, webhook=None, priority=priority)
            for priority in (0, 5, 10, 3)}
    stack.start_worker("eventlet", concurrency=1)
    results = stack.wait_terminal(list(jobs.values()))
    order = sorted(jobs, key=lambda p: results[jobs[p]]["started_at"])
    assert order == [10, 5, 3, 0]


@pytest.mark.parametrize("pool", ["threads", "gevent"])
def test_smoke_under_other_pools(stack_factory, fresh_sandbox, pool):
    if pool == "gevent" and importlib.util.find_spec("gevent") is None:
        pytest.skip("gevent is not installed")
    stack = stack_factory(pool)
    stack.start_api()
    stack.start_worker(pool, concurrency=10)
    jobs = submit_many(stack, 3, offset=300)
    assert_completed(stack.wait_terminal(jobs))
    assert_signed_webhooks(stack, jobs)
    assert stack.forbidden_log_lines() == []
