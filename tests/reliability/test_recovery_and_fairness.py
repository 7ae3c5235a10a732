"""Recovery with the default lease timings, queued jobs whose broker message is gone, and per-user fairness, with
real worker and API processes.

One module-scoped stack runs with the shipped defaults for leases (JOB_LEASE_SECONDS=10, heartbeat 1 s, sweeper
every 2 s), QUEUED_REPUBLISH_SECONDS=2 (so a message that vanished is noticed within seconds here) and
USER_MAX_CONCURRENT_JOBS=1 (only jobs with a user_id are limited). The measured recovery time is printed (no timing
assertion: the machine may be loaded); what is asserted is how the job came back (the sweeper's re-queue) and that
it ran to one completion."""
from __future__ import annotations

import time
import uuid

import pytest
import redis

from llm_service.jobs import JobStore
from tests.integration.stack import located_input
from tests.reliability.support import log_events, parse_time, submit_many, terminal_events

CHAT = "/openai/v1/chat/completions"
RUNNING = 2


@pytest.fixture(scope="module")
def stack(module_stack_factory):
    stack = module_stack_factory("fast-recovery", extra_env={
        "JOB_LEASE_SECONDS": "10", "SWEEPER_INTERVAL_SECONDS": "2", "QUEUED_REPUBLISH_SECONDS": "2",
        "USER_MAX_CONCURRENT_JOBS": "1"})
    stack.start_api()
    stack.start_worker("eventlet", concurrency=RUNNING)
    stack.wait_for_workers()
    return stack


def test_a_job_of_a_sigkilled_worker_is_back_in_work_with_default_leases(stack, fresh_sandbox):
    """Fault: SIGKILL while 2 jobs are inside their LLM call; a new worker starts at once. Expected: the sweeper
    re-queues both (`recoveries` 1, `attempts` 2) and they complete once each; the time from the kill to the second
    claim is printed (the bound is JOB_LEASE_SECONDS + SWEEPER_INTERVAL_SECONDS = 12 s, plus pick-up)."""
    fresh_sandbox.add_fault(CHAT, "timeout", delay=120, count=-1)
    jobs = submit_many(stack, RUNNING, offset=700, webhook=None)
    stack.wait(lambda: fresh_sandbox.stats()["by_path"].get(CHAT, 0) >= RUNNING, "both jobs in their LLM call", 60)
    stack.kill("worker")
    killed_at = time.time()
    fresh_sandbox.clear_faults()
    stack.restart_worker()

    results = stack.wait_terminal(jobs, timeout=90)
    assert {job_id: s["status"] for job_id, s in results.items()} == dict.fromkeys(jobs, "completed")
    back_in_work = []
    for job_id in jobs:
        job = stack.job(job_id)
        assert (job["recoveries"], job["attempts"]) == (1, 2), job
        back_in_work.append(parse_time(job["started_at"]) - killed_at)
    assert {e["job_id"] for e in log_events(stack, "job.recovered")} == set(jobs)
    assert all(len(endings) == 1 for endings in terminal_events(stack, jobs).values())
    print(f"\n[fast-recovery] back in work {min(back_in_work):.1f}-{max(back_in_work):.1f}s after the SIGKILL "
          f"(lease 10 s, heartbeat 1 s, sweeper 2 s)")


def test_queued_jobs_whose_message_is_gone_are_published_again_and_run_once(stack, fresh_sandbox):
    """Fault: (a) a job stored as queued whose message never reached the broker (lost), and (b) a job whose message
    was taken off the queue, as a worker reserving it would, by a worker that died before claiming it (never acked,
    never returned). Expected: both are published again after QUEUED_REPUBLISH_SECONDS and complete once
    (`attempts` 1), instead of waiting for the broker's visibility timeout (2 hours)."""
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    store = JobStore(client, prefix=stack.prefix)
    stack.kill("worker")
    lost = store.create({"workflow_name": "emergency_contacts", "input_data": located_input(801)})["job_id"]
    reserved = stack.submit(input_data=located_input(802), webhook=None)
    queues = [key for key in client.scan_iter(match=f"{stack.env['CELERY_QUEUE']}*") if client.type(key) == b"list"]
    taken = [message for key in queues for message in [client.rpop(key)] if message]
    assert len(taken) == 1 and reserved.encode() in taken[0]
    stack.restart_worker()

    results = stack.wait_terminal([lost, reserved], timeout=60)
    assert {job_id: s["status"] for job_id, s in results.items()} == {lost: "completed", reserved: "completed"}
    for job_id in (lost, reserved):
        assert stack.job(job_id)["attempts"] == 1
    assert {e["job_id"] for e in log_events(stack, "job.republished")} >= {lost, reserved}
    assert all(len(endings) == 1 for endings in terminal_events(stack, [lost, reserved]).values())
    republished = {e["job_id"]: e for e in log_events(stack, "job.republished")}
    waited = [parse_time(republished[j]["ts"]) - parse_time(store.get(j)["queued_at"]) for j in (lost, reserved)]
    print(f"\n[fast-recovery] vanished messages re-published {min(waited):.1f}-{max(waited):.1f}s after queueing "
          "(QUEUED_REPUBLISH_SECONDS=2)")
    client.close()
    assert stack.forbidden_log_lines() == []


def test_a_users_jobs_over_the_limit_wait_in_order_without_delaying_another_user(stack, fresh_sandbox):
    """Setup: USER_MAX_CONCURRENT_JOBS=1, a worker with 2 slots; user A submits 3 jobs, then user B 1, while the first
    two LLM calls take 3 s. Expected: A's first job and B's job run together (B does not wait behind A's queue), A's
    other two stay `queued` without taking the free slot, then run one after the other in submission order; every
    job completes once with one attempt."""
    fresh_sandbox.add_fault(CHAT, "timeout", delay=3, count=2)
    ann, bob = str(uuid.uuid4()), str(uuid.uuid4())
    ann_jobs = [stack.submit(input_data=located_input(900 + i), webhook=None, user_id=ann) for i in range(3)]
    bob_job = stack.submit(input_data=located_input(910), webhook=None, user_id=bob)
    stack.wait(lambda: fresh_sandbox.stats()["by_path"].get(CHAT, 0) >= 2, "two jobs inside their slow LLM call", 60)
    statuses = [stack.status(job_id)["status"] for job_id in [*ann_jobs, bob_job]]
    assert statuses == ["processing", "queued", "queued", "processing"], statuses

    results = stack.wait_terminal([*ann_jobs, bob_job], timeout=90)
    assert {s["status"] for s in results.values()} == {"completed"}
    jobs = [stack.job(job_id) for job_id in ann_jobs]
    assert [job["attempts"] for job in jobs] == [1, 1, 1]
    starts = [parse_time(job["started_at"]) for job in jobs]
    ends = [parse_time(job["completed_at"]) for job in jobs]
    assert starts[0] < ends[0] <= starts[1] < ends[1] <= starts[2]  # one at a time, in order
    parked = [e["job_id"] for e in log_events(stack, "job.skipped") if e.get("reason") == "parked"]
    assert sorted(set(parked)) == sorted(ann_jobs[1:]) and len(parked) <= 4  # parked once each, no re-queue loop
