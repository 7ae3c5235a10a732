"""Soak: rounds of 200 jobs at worker concurrency 100.

Short by default (one round of 200 jobs, what CI runs); ``LLM_SOAK=full`` (``make soak``) repeats rounds for several
minutes (``LLM_SOAK_SECONDS``, default 300). Memory is the worker's resident set (its single process: the eventlet
pool has no children), read from /proc after a warm-up round and after every round."""
from __future__ import annotations

import os
import time

import pytest

from tests.reliability.support import submit_many, terminal_events

ROUND = 200
CONCURRENCY = 100
WARM_UP = 20
MiB = 1024 * 1024
# Allowed growth of the worker's RSS: after one round, over the warm-up reading (pools and caches fill up);
# in the full soak, between the end of the first round and the end of the last one (steady state).
FIRST_ROUND_GROWTH = 80 * MiB
STEADY_STATE_GROWTH = 40 * MiB


def soak_seconds() -> float:
    """0 for the short (CI) version; the full version's duration otherwise."""
    if os.environ.get("LLM_SOAK", "").strip().lower() != "full":
        return 0.0
    return float(os.environ.get("LLM_SOAK_SECONDS", "300"))


def run_round(stack, sandbox, offset: int) -> float:
    """ROUND jobs submitted at once; all must complete, each with one signed webhook. Returns the round's time."""
    sandbox.reset()  # the webhook log keeps the last 500 deliveries: start each round empty
    started = time.monotonic()
    jobs = submit_many(stack, ROUND, offset=offset)
    results = stack.wait_terminal(jobs, timeout=240)
    elapsed = time.monotonic() - started
    failed = {j: (s["status"], s.get("error_message")) for j, s in results.items() if s["status"] != "completed"}
    assert not failed, failed
    wanted = set(jobs)

    def round_deliveries() -> list[dict]:
        return [d for d in sandbox.webhooks() if (d.get("json") or {}).get("job_id") in wanted]

    stack.wait(lambda: len(round_deliveries()) >= ROUND, "every webhook of the round", 60)
    by_job: dict[str, int] = {}
    for delivery in round_deliveries():
        assert delivery["signature_valid"] is True and delivery["json"]["event"] == "workflow.completed"
        by_job[delivery["json"]["job_id"]] = by_job.get(delivery["json"]["job_id"], 0) + 1
    assert by_job == dict.fromkeys(jobs, 1)
    endings = terminal_events(stack, jobs)
    assert all(statuses == ["completed"] for statuses in endings.values())
    return elapsed


@pytest.mark.soak
def test_soak_rounds_of_200_jobs_at_concurrency_100(stack_factory, fresh_sandbox):
    """Fault: sustained load: rounds of 200 emergency_contacts jobs submitted at once to one eventlet worker of
    concurrency 100 (one round by default; LLM_SOAK=full repeats rounds for LLM_SOAK_SECONDS). Expected: every job
    completes with exactly one signed webhook; no process logs an ERROR/CRITICAL line or any of the forbidden
    texts; the worker's RSS stays bounded: at most 80 MiB over the warm-up reading after the first round and, in
    the full soak, at most 40 MiB more between the first and the last round."""
    duration = soak_seconds()
    stack = stack_factory("soak")
    stack.start_api()
    stack.start_worker("eventlet", concurrency=CONCURRENCY)
    stack.wait_for_workers()
    warm = submit_many(stack, WARM_UP, offset=10_000)
    assert {s["status"] for s in stack.wait_terminal(warm, timeout=120).values()} == {"completed"}
    for job_id in warm:  # settled before the first round starts
        stack.wait(lambda: stack.webhooks_for(job_id), f"the webhook of warm-up job {job_id}", 30)
    rss = [stack.rss_bytes()]

    soak_started = time.monotonic()
    rounds = 0
    while rounds == 0 or time.monotonic() - soak_started < duration:
        elapsed = run_round(stack, fresh_sandbox, offset=20_000 + rounds * ROUND)
        rounds += 1
        rss.append(stack.rss_bytes())
        print(f"\n[soak] round {rounds}: {ROUND} jobs in {elapsed:.1f}s, worker RSS {rss[-1] / MiB:.1f} MiB")
    print(f"[soak] {rounds} round(s) in {time.monotonic() - soak_started:.0f}s; RSS (MiB) warm-up "
          f"{rss[0] / MiB:.1f} -> {[round(r / MiB, 1) for r in rss[1:]]}")

    assert stack.forbidden_log_lines() == []
    assert stack.error_log_lines() == []
    assert rss[1] - rss[0] <= FIRST_ROUND_GROWTH, [r / MiB for r in rss]
    assert rss[-1] - rss[1] <= STEADY_STATE_GROWTH, [r / MiB for r in rss]
