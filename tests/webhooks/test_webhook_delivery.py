"""One delivery attempt over the real HTTP helper (upstream mocked with `responses`), and the retry bookkeeping."""
from __future__ import annotations

import json
import socket

import pytest
import requests
import responses

from llm_service.engine.errors import BlockedAddressError
from llm_service.webhooks.delivery import NO_SECRET_ERROR, deliver_once, next_delay, run_delivery
from llm_service.jobs.timeutil import epoch_to_iso as iso_utc
from llm_service.webhooks.payloads import message_id
from llm_service.webhooks.signing import canonical_body, verify_legacy, verify_standard
from webhook_support import GLOBAL_SECRET, JOB_SECRET, WEBHOOK_URL, FakeStore, make_job

NOW = 1_790_000_000.0
UA = "LLM Workflow Microservice/1.0.0"


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def attempt(http, job=None, *, number=1, global_secret=GLOBAL_SECRET, clock=lambda: NOW, event=None):
    job = job or make_job()
    return deliver_once(http, job, event or job["webhook_event"], number, global_secret=global_secret,
                        timeout=5.0, user_agent=UA, clock=clock)


# -- retry schedule ---------------------------------------------------------------------------------------------

def test_default_schedule_is_four_attempts_at_0_5_15_45():
    offsets, number = [0.0], 1
    while (delay := next_delay(number, delays=(5, 15, 45), max_retries=3)) is not None:
        offsets.append(delay)
        number += 1
    assert offsets == [0.0, 5.0, 15.0, 45.0]
    assert number == 4  # the fourth attempt is the last


def test_short_delay_list_reuses_its_last_value_and_zero_retries_means_one_attempt():
    assert [next_delay(n, delays=(5,), max_retries=4) for n in (1, 2, 3, 4, 5)] == [5.0, 5.0, 5.0, 5.0, None]
    assert next_delay(1, delays=(5, 15, 45), max_retries=0) is None
    with pytest.raises(ValueError):
        next_delay(0, delays=(5,), max_retries=3)


# -- deliver_once ---------------------------------------------------------------------------------------------

def test_success_sends_the_signed_canonical_body(http, mock):
    mock.post(WEBHOOK_URL, json={"status": "success"}, status=200)
    record = attempt(http)

    assert record["success"] is True
    assert record["http_status"] == 200
    assert json.loads(record["response_body"]) == {"status": "success"}
    assert record["attempt_number"] == 1 and record["event"] == "workflow.completed"
    assert record["webhook_url"] == WEBHOOK_URL and record["error_message"] is None
    assert record["attempted_at"] == iso_utc(NOW) and record["payload"]["timestamp"] == iso_utc(NOW)
    assert isinstance(record["duration_ms"], int)

    assert len(mock.calls) == 1
    sent = mock.calls[0].request
    assert sent.body == canonical_body(record["payload"])
    headers = sent.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Event"] == "workflow.completed"
    assert headers["User-Agent"] == UA
    assert headers["webhook-id"] == message_id(record["payload"]["job_id"], "workflow.completed")
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert verify_legacy(JOB_SECRET, sent.body, headers["X-Webhook-Signature"])
    assert verify_standard(JOB_SECRET, headers, sent.body, now=NOW)
    assert not verify_legacy(GLOBAL_SECRET, sent.body, headers["X-Webhook-Signature"])


def test_global_secret_signs_when_the_job_has_none(http, mock):
    mock.post(WEBHOOK_URL, status=204)
    record = attempt(http, make_job(webhook_secret="  "))
    assert record["success"] is True
    sent = mock.calls[0].request
    assert verify_legacy(GLOBAL_SECRET, sent.body, sent.headers["X-Webhook-Signature"])
    assert verify_standard(GLOBAL_SECRET, sent.headers, sent.body, now=NOW)


def test_each_attempt_rebuilds_the_payload_with_its_own_timestamp_and_the_same_id(http, mock):
    mock.post(WEBHOOK_URL, status=500)
    first = attempt(http, number=1, clock=lambda: NOW)
    second = attempt(http, number=2, clock=lambda: NOW + 5)
    assert first["payload"]["timestamp"] != second["payload"]["timestamp"]
    assert mock.calls[0].request.headers["webhook-id"] == mock.calls[1].request.headers["webhook-id"]
    assert mock.calls[1].request.headers["webhook-timestamp"] == str(int(NOW + 5))


def test_server_error_is_a_failed_attempt_with_a_bounded_body(http, mock):
    mock.post(WEBHOOK_URL, body="x" * 5000, status=500)
    record = attempt(http)
    assert record["success"] is False
    assert record["http_status"] == 500
    assert record["response_body"] == "x" * 1000
    assert record["error_message"] is None


def test_timeout_is_recorded(http, mock):
    mock.post(WEBHOOK_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    record = attempt(http)
    assert record["success"] is False and record["http_status"] is None
    assert record["error_message"].startswith("Webhook timeout after ")
    assert "ms: " in record["error_message"]


def test_connection_error_is_recorded(http, mock):
    mock.post(WEBHOOK_URL, body=requests.exceptions.ConnectionError("refused"))
    record = attempt(http)
    assert record["success"] is False and record["http_status"] is None
    assert record["error_message"].startswith("Webhook request failed: ")


def test_redirect_is_a_failure_and_is_not_followed(http, mock):
    mock.post(WEBHOOK_URL, status=302, headers={"Location": "https://elsewhere.example.test/x"})
    elsewhere = mock.post("https://elsewhere.example.test/x", status=200)
    record = attempt(http)
    assert record["success"] is False and record["http_status"] == 302
    assert len(mock.calls) == 1 and elsewhere.call_count == 0


def test_private_address_is_refused_by_the_guard():
    from llm_service.http.client import HttpClient

    guarded_http = HttpClient(pool_size=2, user_agent="test")  # private networks NOT allowed
    with socket.socket() as listener:  # something listening, so only the guard can stop the request
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        record = attempt(guarded_http, make_job(webhook_url=f"http://127.0.0.1:{port}/hook"))
    assert record["success"] is False and record["http_status"] is None
    assert record["error_message"].startswith("Webhook URL refused: ")


def test_guard_refusal_message_from_the_http_helper():
    class Refusing:
        def request(self, *args, **kwargs):
            raise BlockedAddressError("10.0.0.5 is a private address")

    record = attempt(Refusing())
    assert record["error_message"] == "Webhook URL refused: 10.0.0.5 is a private address"


def test_no_secret_means_nothing_is_sent(http, mock):
    hook = mock.post(WEBHOOK_URL, status=200)
    record = attempt(http, make_job(webhook_secret=None), global_secret="")
    assert hook.call_count == 0
    assert record["success"] is False and record["error_message"] == NO_SECRET_ERROR
    assert record["payload"]["event"] == "workflow.completed"


def test_secrets_never_reach_the_attempt_record(http, mock):
    echo = f"got {JOB_SECRET} / {GLOBAL_SECRET}"
    mock.post(f"{WEBHOOK_URL}?token=tok-12345678", body=echo, status=400)
    job = make_job(webhook_url=f"{WEBHOOK_URL}?token=tok-12345678", result={"output": echo})
    record = attempt(http, job)
    dumped = json.dumps(record)
    for secret in (JOB_SECRET, GLOBAL_SECRET, "tok-12345678"):
        assert secret not in dumped
    assert record["http_status"] == 400


# -- run_delivery -----------------------------------------------------------------------------------------------

class Mailer:
    def __init__(self):
        self.calls = []

    def __call__(self, http, **kwargs):
        self.calls.append(kwargs)
        return True


def run(store, http, config, number, *, job_id=None, event="workflow.completed", mailer=None, now=NOW):
    return run_delivery(store, http, config, job_id or make_job()["job_id"], event, number, clock=lambda: now,
                        send_email=mailer or Mailer())


def test_success_marks_the_job_delivered(http, mock, config):
    mock.post(WEBHOOK_URL, status=200)
    store, mailer = FakeStore(make_job()), Mailer()
    outcome = run(store, http, config, 1, mailer=mailer)
    job = store.jobs[make_job()["job_id"]]
    assert outcome.outcome == "delivered" and outcome.delay is None and outcome.attempt["success"]
    assert job["webhook_state"] == "delivered" and job["webhook_attempts"] == 1
    assert store.attempts[job["job_id"]][0]["http_status"] == 200
    assert mailer.calls == []


def test_failure_schedules_a_retry(http, mock, config):
    mock.post(WEBHOOK_URL, status=503)
    store = FakeStore(make_job())
    outcome = run(store, http, config, 1)
    job_id = make_job()["job_id"]
    assert outcome.outcome == "retry" and outcome.delay == 5.0
    assert store.jobs[job_id]["webhook_state"] == "pending"
    assert store.due[job_id] == NOW + 5
    assert store.attempts[job_id][0]["next_retry_at"] == iso_utc(NOW + 5)
    assert store.jobs[job_id]["webhook_permanently_failed"] is False


def test_last_failure_is_permanent_and_emails_the_admin(http, mock, config):
    hook = mock.post(WEBHOOK_URL, body="receiver exploded", status=500)
    job = make_job(status="failed", webhook_event="workflow.failed", error_message="boom", result=None)
    store, mailer = FakeStore(job), Mailer()
    outcomes = [run(store, http, config, n, event="workflow.failed", mailer=mailer) for n in (1, 2, 3, 4)]

    assert [(o.outcome, o.delay) for o in outcomes] == [
        ("retry", 5.0), ("retry", 15.0), ("retry", 45.0), ("permanently_failed_now", None)]
    assert hook.call_count == 4
    record = store.jobs[job["job_id"]]
    assert record["webhook_state"] == "failed" and record["webhook_permanently_failed"] is True
    assert [a["attempt_number"] for a in store.attempts[job["job_id"]]] == [1, 2, 3, 4]
    assert job["job_id"] not in store.due
    assert len(mailer.calls) == 1
    sent = mailer.calls[0]
    assert sent["last_error"] == "HTTP 500: receiver exploded"
    assert sent["job"]["webhook_attempts"] == 4
    assert (sent["api_key"], sent["base_url"], sent["admin_email"]) == (
        config.resend_api_key, config.resend_base_url, config.admin_email)

    after = run(store, http, config, 5, event="workflow.failed", mailer=mailer)
    assert after.outcome == "permanently_failed" and hook.call_count == 4


def test_a_broken_mailer_does_not_undo_the_outcome(http, mock, config):
    mock.post(WEBHOOK_URL, body=requests.exceptions.ConnectionError("down"))

    def broken(http, **kwargs):
        raise RuntimeError("mailer bug")

    store = FakeStore(make_job(webhook_attempts=3))
    outcome = run_delivery(store, http, config, make_job()["job_id"], "workflow.completed", 4,
                           clock=lambda: NOW, send_email=broken)
    assert outcome.outcome == "permanently_failed_now"
    assert outcome.attempt["error_message"].startswith("Webhook request failed: ")


@pytest.mark.parametrize("overrides, number, expected", [
    ({"webhook_state": "delivered", "webhook_attempts": 1}, 2, "already_delivered"),
    ({"webhook_state": "failed", "webhook_permanently_failed": True, "webhook_attempts": 4}, 5,
     "permanently_failed"),
    ({"webhook_attempts": 2}, 2, "duplicate_attempt"),
    ({"webhook_attempts": 2}, 1, "duplicate_attempt"),
    ({"webhook_url": None, "webhook_state": "none"}, 1, "no_webhook_url"),
    ({"webhook_event": "workflow.cancelled"}, 1, "event_mismatch"),
])
def test_attempts_that_are_no_longer_wanted_never_post(http, mock, config, overrides, number, expected):
    hook = mock.post(WEBHOOK_URL, status=200)
    store = FakeStore(make_job(**overrides))
    outcome = run(store, http, config, number)
    assert outcome.outcome == expected and outcome.attempt is None
    assert hook.call_count == 0
    assert store.attempts[make_job()["job_id"]] == []


def test_missing_job(http, mock, config):
    assert run(FakeStore(), http, config, 1, job_id="nope").outcome == "job_not_found"
    assert len(mock.calls) == 0


def test_a_redelivered_task_does_not_send_twice(http, mock, config):
    hook = mock.post(WEBHOOK_URL, status=500)
    store = FakeStore(make_job())
    assert run(store, http, config, 1).outcome == "retry"
    assert run(store, http, config, 1).outcome == "duplicate_attempt"
    assert hook.call_count == 1


def test_a_concurrent_caller_holding_the_attempt_lock_wins(http, mock, config):
    hook = mock.post(WEBHOOK_URL, status=200)
    store = FakeStore(make_job())
    assert store.try_lock(f"webhook:{make_job()['job_id']}:1", 60)
    assert run(store, http, config, 1).outcome == "locked"
    assert hook.call_count == 0
    assert run(store, http, config, 2).outcome == "delivered"  # a later attempt takes its own lock


def test_stored_attempts_hold_no_secret(http, mock, config):
    mock.post(WEBHOOK_URL, body=f"{JOB_SECRET}{GLOBAL_SECRET}", status=500)
    store = FakeStore(make_job(result={"output": f"leak {GLOBAL_SECRET}"}))
    for n in (1, 2, 3, 4):
        run(store, http, config, n)
    dumped = json.dumps(store.attempts)
    assert len(store.attempts[make_job()["job_id"]]) == 4
    assert JOB_SECRET not in dumped and GLOBAL_SECRET not in dumped
