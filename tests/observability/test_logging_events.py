"""Structured log events: one JSON object per line on stderr, one event per job state change, step, upstream call,
webhook attempt and recovery, with ids, statuses and durations, and never the job's input data."""
from __future__ import annotations

import json
import logging
import time

import responses

from llm_service.logs import configure_logging
from llm_service.observability import MetricsObserver
from tests.observability.conftest import HOOK, SECRET_INPUT


def only(events: list[dict]) -> dict:
    assert len(events) == 1, events
    return events[0]


def test_events_are_json_lines_on_stderr(capsys, metrics):
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        configure_logging("DEBUG", "json")  # the production setup: one JSON handler on sys.stderr
        MetricsObserver(metrics).step_finished(job_id="job-1", step_id="a", step_type="transform", success=True,
                                               duration_ms=3, error=None, cached=None)
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [json.loads(line) for line in captured.err.splitlines() if '"step.finished"' in line]
    assert only(lines)["job_id"] == "job-1" and lines[0]["level"] == "info" and lines[0]["ts"].endswith("Z")


def test_a_completed_job_logs_its_states_steps_and_upstream_calls(runtime, submit, logs):
    job_id = submit()
    runtime.run_job(job_id)

    processing, completed = logs.events("job.state")
    assert processing == {**processing, "job_id": job_id, "status": "processing", "workflow": "cached"}
    assert completed == {**completed, "job_id": job_id, "status": "completed", "workflow": "cached"}
    assert isinstance(completed["duration_ms"], int)
    step = only(logs.events("step.finished"))
    assert step == {**step, "level": "info", "job_id": job_id, "step_id": "fetch", "step_type": "external_api",
                    "success": True, "cached": False}
    assert isinstance(step["duration_ms"], int)
    call = only(logs.events("upstream.call"))
    assert call == {**call, "level": "debug", "job_id": job_id, "service": "fake", "operation": "echo",
                    "status": 200, "outcome": "2xx", "cached": False}
    assert isinstance(call["duration_ms"], int) and "error_type" not in call


def test_a_cache_hit_is_visible_in_the_step_and_upstream_events(runtime, submit, logs):
    runtime.run_job(submit())
    second = submit()
    runtime.run_job(second)
    step = logs.events("step.finished")[-1]
    call = logs.events("upstream.call")[-1]
    assert step["job_id"] == second and step["cached"] is True
    assert call == {**call, "job_id": second, "cached": True, "outcome": "cache_hit"}


def test_a_failed_step_logs_its_error_type_without_the_message(runtime, submit, logs):
    job_id = submit("bad")
    runtime.run_job(job_id)

    step = only(logs.events("step.finished"))
    assert step == {**step, "level": "warning", "job_id": job_id, "step_id": "call", "success": False,
                    "error_type": "ServerError", "error_category": "EXTERNAL_ERROR"}
    call = only(logs.events("upstream.call"))
    assert call == {**call, "level": "info", "status": 500, "outcome": "5xx", "error_type": "ServerError"}
    final = logs.events("job.state")[-1]
    assert final == {**final, "job_id": job_id, "status": "failed", "error_type": "ServerError",
                     "error_category": "EXTERNAL_ERROR"}
    # the upstream's error message quoted the input; no event carries it
    for name in ("step.finished", "upstream.call", "job.state"):
        assert SECRET_INPUT not in json.dumps(logs.events(name))


def test_a_redelivered_job_logs_a_skip_with_its_current_status(runtime, submit, logs):
    job_id = submit()
    runtime.run_job(job_id)
    runtime.run_job(job_id)
    skipped = only(logs.events("job.skipped"))
    assert skipped == {**skipped, "job_id": job_id, "reason": "finished", "status": "completed"}


@responses.activate
def test_webhook_attempts_log_outcome_status_and_duration(runtime, submit, logs):
    responses.add(responses.POST, HOOK, status=503)
    job_id = submit()
    runtime.run_job(job_id)
    runtime.deliver_webhook(job_id, "workflow.completed", 1)
    attempt = only(logs.events("webhook.attempt"))
    assert attempt == {**attempt, "job_id": job_id, "webhook_event": "workflow.completed", "attempt": 1,
                       "outcome": "retry", "http_status": 503, "retry_in": 5}
    assert isinstance(attempt["duration_ms"], int)


def test_a_recovered_job_logs_its_new_status(runtime, submit, logs):
    job_id = submit()
    assert runtime.store.claim(job_id, worker_id="dead-worker", lease_seconds=0.05).outcome == "claimed"
    time.sleep(0.2)  # the dead worker's lease and the grace period pass
    runtime.maintenance_tick(force=True)
    recovered = only(logs.events("job.recovered"))
    assert recovered == {**recovered, "level": "warning", "job_id": job_id, "outcome": "requeued",
                         "status": "queued"}

