"""Upstream faults per step, injected by the sandbox on real HTTP connections to a real worker process.

One stack serves the module, with short limits so every case settles in seconds: EXTERNAL_API_TIMEOUT_SECONDS=2
(the whole request, body included, must finish in 2 s) and HTTP_MAX_RESPONSE_BYTES=1 MiB. The bundled
emergency_contacts workflow decides what each fault leads to:

* ``fetch_weather`` has ``error_mode: retry`` with ``retry_count: 2``: a retryable error is tried 3 times, then
  the step and the job fail; a non-retryable one fails at once.
* the three Places searches have ``error_mode: continue``: the failed search is recorded as failed and the job
  completes without its data.
* ``generate_contacts`` (the LLM call) has ``error_mode: retry`` with ``retry_count: 2``: one fault is retried.

Each case uses its own location, so no answer comes from the cache."""
from __future__ import annotations

import itertools

import pytest

from tests.integration.stack import located_input
from tests.reliability.support import parse_time, step_entry

WEATHER = "/weatherapi/v1/current.json"
NEARBY = "/places/nearbysearch/json"
CHAT = "/openai/v1/chat/completions"
PLACES_STEPS = ("fetch_hospitals", "fetch_police", "fetch_fire_stations")
RETRY_AFTER = 2

# fault id -> (sandbox fault kind, its options, error type, retryable); every one is an EXTERNAL_ERROR
FAULTS = {
    "timeout": ("timeout", {"delay": 6}, "TimeoutError", True),
    "slow_drip": ("slow_drip", {"interval": 0.5, "chunk": 64}, "TimeoutError", True),
    "reset": ("reset", {}, "ConnectionError", True),
    "5xx": ("status", {"status": 503}, "ServerError", True),
    "429": ("retry_after", {"retry_after": RETRY_AFTER}, "RateLimitError", True),
    "malformed_json": ("malformed_json", {}, "BadResponseError", True),
    "wrong_content_type": ("wrong_content_type", {}, "BadResponseError", True),
    "huge_body": ("huge_body", {"size": 2 * 1024 * 1024}, "BadResponseError", False),
}
_locations = itertools.count(700)


@pytest.fixture(scope="module")
def stack(module_stack_factory):
    stack = module_stack_factory("upstream-faults", extra_env={
        "EXTERNAL_API_TIMEOUT_SECONDS": "2", "HTTP_MAX_RESPONSE_BYTES": str(1024 * 1024)})
    stack.start_api()
    stack.start_worker("eventlet", concurrency=4)
    stack.wait_for_workers()
    return stack


def run_job(stack) -> tuple[str, dict, dict]:
    job_id = stack.submit(input_data=located_input(next(_locations)), webhook=None)
    status = stack.wait_terminal([job_id], timeout=60)[job_id]
    return job_id, status, stack.job(job_id)


def request_times(sandbox, path: str) -> list[float]:
    return [parse_time(r["time"]) for r in sandbox.requests() if r["path"] == path]


def report(where: str, fault: str, job: dict, entry: dict) -> None:
    error = entry.get("error") or {}
    print(f"\n[{where} {fault}] job={job['status']} step_success={entry['success']} type={error.get('type')} "
          f"category={error.get('category')} retryable={error.get('retryable')} "
          f"retry_after={error.get('retry_after')} attempts={entry.get('attempts', 1)} "
          f"step_ms={entry['duration_ms']}")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_weather_fault_is_retried_as_documented_then_fails_the_job(stack, fresh_sandbox, fault):
    """Fault: every WeatherAPI request misbehaves (timeout, slow drip, reset, 503, 429 with Retry-After, malformed
    JSON, HTML instead of JSON, a 2 MiB body). Expected: the job ends `failed` at step fetch_weather with the
    fault's error type, category EXTERNAL_ERROR and its retryable flag; a retryable fault was tried 3 times
    (`attempts: 3` on the step entry, 3 requests seen upstream), a non-retryable one (the oversized body) once;
    after a 429 each retry waited at least the Retry-After seconds."""
    kind, options, error_type, retryable = FAULTS[fault]
    fresh_sandbox.add_fault(WEATHER, kind, count=-1, **options)
    _, status, job = run_job(stack)
    entry = step_entry(job, "fetch_weather")
    report("weather", fault, job, entry)

    expected_attempts = 3 if retryable else 1
    assert status["status"] == "failed", status
    assert entry["success"] is False
    error = entry["error"]
    assert (error["type"], error["category"], error["retryable"]) == (error_type, "EXTERNAL_ERROR", retryable)
    assert error["step_id"] == "fetch_weather" and error["details"]["service"] == "weatherapi"
    assert entry.get("attempts", 1) == expected_attempts
    assert fresh_sandbox.stats()["by_path"][WEATHER] == expected_attempts
    assert job["error"]["type"] == error_type and job["error"]["step_id"] == "fetch_weather"
    assert "key=" not in error["message"] and "sandbox-weather-key" not in str(job)
    if fault == "429":
        assert error["retry_after"] == RETRY_AFTER
        times = request_times(fresh_sandbox, WEATHER)
        assert all(later - earlier >= RETRY_AFTER for earlier, later in zip(times, times[1:])), times
    assert stack.forbidden_log_lines() == []


def test_weather_429_once_then_ok_waits_retry_after_and_completes(stack, fresh_sandbox):
    """Fault: WeatherAPI answers one 429 with `Retry-After: 2`, then normally. Expected: the step is retried no
    sooner than 2 s later (upstream request times, and the step's duration), succeeds on attempt 2, and the job
    completes."""
    fresh_sandbox.add_fault(WEATHER, "retry_after", retry_after=RETRY_AFTER, count=1)
    _, status, job = run_job(stack)
    entry = step_entry(job, "fetch_weather")
    report("weather", "429 once", job, entry)
    assert status["status"] == "completed", status
    assert entry["success"] is True and entry["attempts"] == 2
    first, second = request_times(fresh_sandbox, WEATHER)
    assert second - first >= RETRY_AFTER
    assert entry["duration_ms"] >= RETRY_AFTER * 1000


@pytest.mark.parametrize("fault", list(FAULTS))
def test_places_fault_is_recorded_and_the_job_completes(stack, fresh_sandbox, fault):
    """Fault: the first Places nearby-search request misbehaves (same faults as above). Expected: the search that
    got it is recorded failed (its error type, EXTERNAL_ERROR, retryable flag; one attempt: `continue` does not
    retry), the other two searches succeed, and the job completes with contacts."""
    kind, options, error_type, retryable = FAULTS[fault]
    fresh_sandbox.add_fault(NEARBY, kind, count=1, **options)
    _, status, job = run_job(stack)
    assert status["status"] == "completed", status
    entries = {step_id: step_entry(job, step_id) for step_id in PLACES_STEPS}
    failed = [step_id for step_id, entry in entries.items() if not entry["success"]]
    assert len(failed) == 1, entries
    entry = entries[failed[0]]
    report("places", fault, job, entry)
    error = entry["error"]
    assert (error["type"], error["category"], error["retryable"]) == (error_type, "EXTERNAL_ERROR", retryable)
    assert error["step_id"] == failed[0] and "attempts" not in entry
    assert fresh_sandbox.stats()["by_path"][NEARBY] == len(PLACES_STEPS)
    assert job["result"]["output"]["contacts"], job["result"]
    assert job["error"] is None
    assert stack.forbidden_log_lines() == []


@pytest.mark.parametrize("fault", ["reset", "5xx", "429", "malformed_json"])
def test_llm_fault_once_is_retried_and_the_job_completes(stack, fresh_sandbox, fault):
    """Fault: the first chat-completions request misbehaves (reset, 503, 429 with Retry-After: 2, malformed JSON).
    Expected: generate_contacts retries it (`attempts: 2`; after the 429 not sooner than 2 s) and the job
    completes with contacts."""
    kind, options, _, _ = FAULTS[fault]
    fresh_sandbox.add_fault(CHAT, kind, count=1, **options)
    _, status, job = run_job(stack)
    entry = step_entry(job, "generate_contacts")
    report("llm", fault, job, entry)
    assert status["status"] == "completed", status
    assert entry["success"] is True and entry["attempts"] == 2
    assert fresh_sandbox.stats()["by_path"][CHAT] == 2
    if fault == "429":
        first, second = request_times(fresh_sandbox, CHAT)
        assert second - first >= RETRY_AFTER
    assert job["result"]["output"]["contacts"]
