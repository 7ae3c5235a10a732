"""The admin e-mail through Resend's HTTP API (mocked with `responses`)."""
from __future__ import annotations

import json

import pytest
import requests
import responses

from llm_service.webhooks.email import send_failure_email
from webhook_support import JOB_SECRET, make_job

BASE = "https://resend.example.test"
KEY = "re_test_key_123456"


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def send(http, job, **overrides):
    kwargs = dict(api_key=KEY, base_url=BASE, from_email="noreply@example.test", admin_email="admin@example.test",
                  job=job, last_error="HTTP 500: receiver exploded")
    kwargs.update(overrides)
    return send_failure_email(http, **kwargs)


def test_request_shape(http, mock):
    resend = mock.post(f"{BASE}/emails", json={"id": "email-1"}, status=200)
    job = make_job(webhook_attempts=4)
    assert send(http, job) is True

    assert resend.call_count == 1
    request = mock.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    message = json.loads(request.body)
    assert set(message) == {"from", "to", "subject", "html"}
    assert message["from"] == "noreply@example.test" and message["to"] == ["admin@example.test"]
    assert message["subject"] == "Webhook delivery failed: emergency_contacts"
    html = message["html"]
    for text in (job["job_id"], "emergency_contacts", job["webhook_url"], "HTTP 500: receiver exploded",
                 "Troubleshooting", "completed successfully"):
        assert text in html
    assert "<td>4</td>" in html
    assert JOB_SECRET not in request.body.decode()


@pytest.mark.parametrize("status, word", [("failed", "workflow failed"), ("cancelled", "was cancelled")])
def test_copy_matches_the_job_outcome(http, mock, status, word):
    mock.post(f"{BASE}/emails", status=200)
    assert send(http, make_job(status=status))
    html = json.loads(mock.calls[0].request.body)["html"]
    assert word in html
    assert "completed successfully" not in html


def test_values_are_escaped_and_url_credentials_hidden(http, mock):
    mock.post(f"{BASE}/emails", status=200)
    job = make_job(workflow_name="<script>x</script>", webhook_url="https://h.example.test/cb?token=tok-abcdef12")
    assert send(http, job, last_error="HTTP 400: <b>bad</b>")
    html = json.loads(mock.calls[0].request.body)["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bad</b>" not in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "tok-abcdef12" not in html


def test_without_an_api_key_nothing_is_sent(http, mock):
    resend = mock.post(f"{BASE}/emails", status=200)
    assert send(http, make_job(), api_key="") is False
    assert send(http, make_job(), api_key="   ") is False
    assert resend.call_count == 0


def test_rejection_and_transport_errors_return_false(http, mock):
    mock.post(f"{BASE}/emails", status=422, json={"message": "invalid from"})
    assert send(http, make_job()) is False

    mock.replace(responses.POST, f"{BASE}/emails", body=requests.exceptions.ConnectionError("down"))
    assert send(http, make_job()) is False
