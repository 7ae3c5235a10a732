"""Webhook receiver down, then back; and down for good.

The stack uses WEBHOOK_RETRY_DELAYS=1,2,3 with the default WEBHOOK_MAX_RETRIES=3, so a delivery is attempted at
0, +1, +3 and +6 s (plus up to ~1 s for the worker's due-webhook scan) and the cases settle in seconds. Each attempt
is read back through the API (``GET /api/v1/jobs/<id>/webhooks``)."""
from __future__ import annotations

import time

import pytest

from llm_service.sandbox import SandboxServer
from tests.integration.stack import WEBHOOK_SECRET, free_port
from tests.reliability.support import parse_time

DELAYS = (1, 2, 3)


@pytest.fixture(scope="module")
def stack(module_stack_factory):
    stack = module_stack_factory("webhook-outage", extra_env={"WEBHOOK_RETRY_DELAYS": ",".join(map(str, DELAYS)),
                                                              "WEBHOOK_MAX_RETRIES": str(len(DELAYS))})
    stack.start_api()
    stack.start_worker("eventlet", concurrency=4)
    stack.wait_for_workers()
    return stack


def deliveries(stack, job_id: str) -> dict:
    response = stack.session.get(f"{stack.api_url}/api/v1/jobs/{job_id}/webhooks", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def assert_on_schedule(attempts: list[dict]) -> None:
    """Attempt n+1 started no sooner than the configured delay after attempt n started."""
    starts = [parse_time(a["attempted_at"]) for a in attempts]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert all(gap >= delay for gap, delay in zip(gaps, DELAYS)), (gaps, DELAYS)
    print(f"\n  attempt gaps (s): {[round(g, 2) for g in gaps]} for delays {DELAYS}")


def test_receiver_down_then_back_delivery_resumes_on_schedule(stack, fresh_sandbox):
    """Fault: nothing listens on the webhook URL's port (connection refused) for the first two attempts; then the
    receiver starts. Expected: attempts 1 and 2 are recorded as failed transport errors with a next retry time,
    attempt 3 (due 1 + 2 s later) is delivered with a valid signature, the state is `delivered`, not permanently
    failed, and the receiver got the event exactly once."""
    receiver = SandboxServer(port=free_port(), webhook_secret=WEBHOOK_SECRET)
    url = f"http://127.0.0.1:{receiver.port}/webhooks/late"
    job_id = stack.submit("hello", {"name": "late receiver"}, webhook=None, webhook_url=url)
    assert stack.wait_terminal([job_id], timeout=30)[job_id]["status"] == "completed"
    stack.wait(lambda: len(deliveries(stack, job_id)["attempts"]) >= 2, "two failed attempts", 30)
    with receiver:
        stack.wait(lambda: deliveries(stack, job_id)["state"] == "delivered", "the delivery to resume", 30)
        received = receiver.webhooks()
    record = deliveries(stack, job_id)
    attempts = record["attempts"]
    summary = [(a["attempt_number"], a["http_status"], a["error_message"]) for a in attempts]
    print(f"\n[webhook down then back] {summary}")
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3]
    for failed in attempts[:2]:
        assert failed["success"] is False and failed["http_status"] is None
        assert "connection refused" in failed["error_message"] and failed["next_retry_at"]
    assert attempts[2]["success"] is True and attempts[2]["http_status"] == 200
    assert record["permanently_failed"] is False
    assert_on_schedule(attempts)
    assert len(received) == 1 and received[0]["signature_valid"] is True
    assert received[0]["json"]["event"] == "workflow.completed" and received[0]["json"]["job_id"] == job_id
    assert stack.forbidden_log_lines() == []


def test_receiver_down_for_good_is_recorded_as_permanently_failed(stack, fresh_sandbox):
    """Fault: the receiver answers 503 to every delivery. Expected: exactly 4 attempts (the first plus 3 retries)
    on the 1/2/3 s schedule, each recorded with HTTP status 503 and the response body; then the delivery is
    `failed` with `permanently_failed: true` through the API (job detail too), and no further attempt is made."""
    fresh_sandbox.configure(webhook_status=503)
    job_id = stack.submit("hello", {"name": "gone receiver"})
    assert stack.wait_terminal([job_id], timeout=30)[job_id]["status"] == "completed"
    stack.wait(lambda: deliveries(stack, job_id)["permanently_failed"], "the delivery to be given up", 30)
    time.sleep(max(DELAYS) + 1)  # long enough for a (wrong) fifth attempt to show up

    record = deliveries(stack, job_id)
    attempts = record["attempts"]
    print(f"\n[webhook down for good] {[(a['attempt_number'], a['http_status']) for a in attempts]} "
          f"state={record['state']} permanently_failed={record['permanently_failed']}")
    assert record["state"] == "failed" and record["permanently_failed"] is True
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3, 4]
    assert all(a["http_status"] == 503 and a["success"] is False and a["response_body"] for a in attempts)
    assert all(a.get("next_retry_at") for a in attempts[:3]) and not attempts[3].get("next_retry_at")
    assert_on_schedule(attempts)
    assert len(stack.webhooks_for(job_id)) == 4
    webhook = stack.job(job_id)["webhook"]
    assert webhook["state"] == "failed" and webhook["permanently_failed"] is True and webhook["attempts"] == 4
    assert stack.forbidden_log_lines() == []
