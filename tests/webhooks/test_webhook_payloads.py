"""Payload shapes for the three events, including the fixes over the old service."""
from __future__ import annotations

import json
import re

import pytest

from llm_service.jobs.timeutil import epoch_to_iso as iso_utc
from llm_service.webhooks.payloads import build_payload, message_id
from llm_service.webhooks.signing import canonical_body
from webhook_support import GLOBAL_SECRET, JOB_SECRET, make_job

NOW = "2026-11-28T10:00:30.250Z"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

STRUCTURED_ERROR = {
    "type": "TimeoutError", "category": "EXTERNAL_ERROR", "message": "API request timed out",
    "timestamp": "2026-11-28T10:00:20.000Z", "retryable": True, "retry_after": 30, "step_id": "fetch_weather",
    "details": {"service": "weatherapi", "operation": "current",
                "inputs": {"lat": 1.5, "lng": 2.5, "api_key": "wk-live-abcdef123", "location": "Springfield"},
                "retry_after": 30,
                "suggestions": ["Retry the job later.", "Raise the step timeout."]},
}


def failed_job(**overrides) -> dict:
    base = dict(status="failed", result=None, webhook_event="workflow.failed",
                error_message="API request timed out", error=STRUCTURED_ERROR)
    base.update(overrides)
    return make_job(**base)


def test_iso_utc_has_a_single_z():
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert ISO_Z.match(iso_utc(1_790_000_000.1234))


def test_completed_payload_shape_and_real_cost():
    job = make_job(total_tokens=0, total_cost_usd=0.0)  # the result metadata must be the source
    payload = build_payload(job, "workflow.completed", now_iso=NOW)
    assert set(payload) == {"event", "job_id", "status", "workflow_name", "user_id", "result", "cost_data",
                            "duration_ms", "timestamp", "created_at", "completed_at"}
    assert payload["event"] == "workflow.completed" and payload["status"] == "completed"
    assert payload["job_id"] == job["job_id"] and payload["user_id"] == "user-42"
    assert payload["result"] == job["result"]
    assert payload["cost_data"] == {"total_tokens": 1234, "cost_usd": 0.012345,
                                    "llm_calls": job["result"]["metadata"]["llm_calls"]}
    assert payload["duration_ms"] == 24500
    for key in ("timestamp", "created_at", "completed_at"):
        assert ISO_Z.match(payload[key]), key
    assert "error" not in payload and "error_message" not in payload


def test_completed_without_result_uses_record_totals():
    payload = build_payload(make_job(result=None, total_tokens=7, total_cost_usd=0.5, duration_ms=None),
                            "workflow.completed", now_iso=NOW)
    assert payload["result"] == {}
    assert payload["cost_data"] == {"total_tokens": 7, "cost_usd": 0.5, "llm_calls": []}
    assert payload["duration_ms"] is None


def test_failed_payload_with_structured_error():
    payload = build_payload(failed_job(), "workflow.failed", now_iso=NOW)
    assert payload["event"] == "workflow.failed" and payload["status"] == "failed"
    assert payload["error_message"] == "API request timed out"
    assert payload["user_id"] == "user-42"  # the old failed payload lacked it
    assert ISO_Z.match(payload["completed_at"]) and ISO_Z.match(payload["created_at"])
    assert payload["duration_ms"] == 24500
    error = payload["error"]
    assert (error["type"], error["category"], error["step_id"]) == ("TimeoutError", "EXTERNAL_ERROR",
                                                                    "fetch_weather")
    assert error["details"]["service"] == "weatherapi" and error["details"]["retry_after"] == 30
    assert error["details"]["inputs"]["api_key"] == "[REDACTED]"
    assert error["details"]["inputs"]["location"] == "Springfield"
    assert len(error["details"]["suggestions"]) == 2
    assert "result" not in payload and "cost_data" not in payload
    assert "stack_trace" not in json.dumps(payload)


def test_failed_payload_reads_a_legacy_json_error_message():
    legacy = {"type": "ValueError", "category": "USER_ERROR", "message": "bad zip", "retryable": False}
    payload = build_payload(failed_job(error=None, error_message=json.dumps(legacy)), "workflow.failed",
                            now_iso=NOW)
    assert payload["error_message"] == "bad zip"
    assert payload["error"] == legacy


def test_failed_payload_legacy_json_without_message_keeps_the_raw_text():
    raw = json.dumps({"type": "X", "category": "SYSTEM_ERROR"})
    payload = build_payload(failed_job(error=None, error_message=raw), "workflow.failed", now_iso=NOW)
    assert payload["error_message"] == raw
    assert payload["error"]["category"] == "SYSTEM_ERROR"


@pytest.mark.parametrize("raw", ["123", "[1, 2]", '"quoted"', "null", "true", "{}", "Rate limit exceeded"])
def test_failed_payload_with_text_or_non_object_json_has_no_error_key(raw):
    payload = build_payload(failed_job(error=None, error_message=raw), "workflow.failed", now_iso=NOW)
    assert payload["error_message"] == raw
    assert "error" not in payload


def test_failed_payload_without_any_error_and_optional_fields():
    payload = build_payload(failed_job(error=None, error_message=None, duration_ms=0, created_at=None),
                            "workflow.failed", now_iso=NOW)
    assert payload["error_message"] == "Unknown error"
    assert "duration_ms" not in payload and "created_at" not in payload and "error" not in payload
    for key in ("event", "job_id", "status", "error_message", "user_id", "completed_at", "timestamp"):
        assert key in payload


def test_cancelled_payload_shape():
    partial = {"success": False, "steps": {"a": {"output": 1}}}
    payload = build_payload(make_job(status="cancelled", result=partial), "workflow.cancelled", now_iso=NOW)
    assert set(payload) == {"event", "job_id", "status", "workflow_name", "user_id", "timestamp", "created_at",
                            "completed_at", "duration_ms", "result"}
    assert payload["event"] == "workflow.cancelled" and payload["status"] == "cancelled"
    assert payload["result"] == partial

    queued = build_payload(make_job(status="cancelled", result=None, duration_ms=None, started_at=None),
                           "workflow.cancelled", now_iso=NOW)
    assert queued["result"] is None
    assert "duration_ms" not in queued


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="llm.step.completed"):
        build_payload(make_job(), "llm.step.completed", now_iso=NOW)


@pytest.mark.parametrize("event", ["workflow.completed", "workflow.failed", "workflow.cancelled"])
def test_no_secret_reaches_a_payload(event):
    echo = f"echo {JOB_SECRET} and {GLOBAL_SECRET}"
    job = make_job(result={"output": echo, "metadata": {"note": echo}}, error_message=echo,
                   error={"message": echo, "details": {"inputs": {"webhook_secret": JOB_SECRET}}})
    body = canonical_body(build_payload(job, event, now_iso=NOW, extra_secrets=[GLOBAL_SECRET]))
    assert JOB_SECRET.encode() not in body
    assert GLOBAL_SECRET.encode() not in body
    assert b"input_data" not in body and b"Springfield" not in body


def test_payloads_are_serialisable_and_message_ids_are_stable():
    for event, job in (("workflow.completed", make_job()), ("workflow.failed", failed_job()),
                       ("workflow.cancelled", make_job(status="cancelled"))):
        assert json.loads(canonical_body(build_payload(job, event, now_iso=NOW)))["event"] == event
    assert message_id("j1", "workflow.failed") == message_id("j1", "workflow.failed")
    assert message_id("j1", "workflow.failed") != message_id("j1", "workflow.completed")
    assert message_id("j1", "workflow.failed") != message_id("j2", "workflow.failed")
