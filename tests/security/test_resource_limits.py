"""Limits against resource abuse, end to end through the API, the worker runtime, the real HTTP client and the
sandbox upstream.

The engine-level checks of the same limits (a fake provider, no HTTP) live in ``tests/engine/test_runner.py``
(``test_limits_cap_steps_tokens_and_spend``) and the single-app submit limit in ``tests/api/test_api_submit.py``.
Here: the submit limit shared by every API process using one Redis and kept per key; ``LLM_MAX_TOKENS_CAP`` as it
reaches the provider's wire; ``JOB_MAX_LLM_COST_USD`` stopping the second paid call; ``WORKFLOW_MAX_STEPS`` in
validate, the listing and a run (nested steps counted); ``PARALLEL_MAX_WIDTH`` bounding the requests in flight at
the upstream; ``HTTP_MAX_RESPONSE_BYTES`` against an upstream that answers with a huge body.
"""
from __future__ import annotations

import uuid

import pytest

CHAT = "/openai/v1/chat/completions"
WEATHER_PATH = "/weatherapi/v1/current.json"
QUICK = {"name": "quick", "steps": [
    {"id": "t", "type": "transform", "config": {"operation": "template", "config": {"template": "hi"}}}]}


def _llm(step_id: str, **config) -> dict:
    return {"id": step_id, "type": "llm", "config": {"model": "openai/gpt-4o-mini", "prompt_text": "Say hi.",
                                                     **config}}


def _weather(step_id: str, lat: int) -> dict:
    return {"id": step_id, "type": "external_api",
            "config": {"service": "weatherapi", "operation": "current", "cache_ttl": 0,
                       "parameters": {"lat": lat, "lng": 10}}}


def _chats(stack) -> list[dict]:
    return [r for r in stack.sandbox.requests() if r["path"] == CHAT]


def _submit(stack, secret: str | None = None):
    headers = {"X-API-Secret": secret} if secret else stack.auth
    return stack.client.post("/api/v1/workflow", headers=headers, json={"workflow_name": "quick", "input_data": {}})


# --------------------------------------------------------------------------------------------------------------
# Submissions per API key


def test_the_submit_limit_is_shared_by_every_api_process_and_kept_per_key(make_stack):
    first = make_stack([QUICK], submit_rate_limit=2, submit_rate_window_seconds=60)
    second = make_stack([QUICK], submit_rate_limit=2, submit_rate_window_seconds=60)  # another gunicorn worker
    other_key = make_stack([QUICK], env={"LLM_API_SECRET": "another-tenant-secret-9d3f"}, submit_rate_limit=2,
                           submit_rate_window_seconds=60)

    assert _submit(first).status_code == 202
    assert _submit(second).status_code == 202
    refused = _submit(first)
    again = _submit(second)

    for response in (refused, again):
        assert response.status_code == 429
        detail = response.get_json()["detail"]
        assert detail["error"] == "RateLimitExceeded" and "2 per 60 seconds" in detail["message"]
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.headers["Retry-After"] == str(detail["retry_after"])
    assert _submit(other_key).status_code == 202  # the other key has its own bucket
    assert _submit(other_key).status_code == 202
    assert _submit(other_key).status_code == 429
    assert len(first.queue.jobs) == 4  # the shared recording queue saw exactly the accepted ones


# --------------------------------------------------------------------------------------------------------------
# LLM tokens and spend


def test_max_tokens_is_capped_in_the_request_sent_to_the_provider(make_stack):
    stack = make_stack([{"name": "tokens", "steps": [_llm("big", max_tokens=16000), _llm("small", max_tokens=20)]}],
                       llm_max_tokens_cap=64)
    job_id = stack.submit("tokens")
    assert stack.run(job_id)["status"] == "completed"

    assert [chat["json"]["max_tokens"] for chat in _chats(stack)] == [64, 20]
    entries = {entry["step_id"]: entry for entry in stack.store.steps(job_id)}
    assert "max_tokens 16000 capped at 64 (LLM_MAX_TOKENS_CAP)" in entries["big"]["warnings"]
    assert "warnings" not in entries["small"]


def test_a_definition_asking_for_more_tokens_than_any_model_allows_is_refused_at_submit(make_stack):
    stack = make_stack([{"name": "greedy", "steps": [_llm("a", max_tokens=10**9)]}])
    response = stack.post("/api/v1/workflow", json={"workflow_name": "greedy", "input_data": {}})
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert detail["error"] == "WorkflowValidationError" and "max_tokens" in detail["message"]
    assert stack.queue.jobs == []


def test_llm_spend_per_job_stops_the_next_paid_call(make_stack):
    stack = make_stack([{"name": "spender", "steps": [_llm("first"), _llm("second"), _llm("third")]}],
                       job_max_llm_cost_usd=1e-9)
    job_id = stack.submit("spender", webhook_url=stack.sandbox.webhook_url("spend"))
    assert stack.run(job_id)["status"] == "failed"

    assert len(_chats(stack)) == 1  # the first call spent more than the cap; no further call was made
    record = stack.store.get(job_id)
    assert record["error"]["type"] == "LimitExceeded" and record["error"]["step_id"] == "second"
    assert "JOB_MAX_LLM_COST_USD" in record["error_message"]
    assert record["total_cost_usd"] > 1e-9 and len(stack.store.usage(job_id)) == 1
    stack.deliver_pending_webhooks()
    [delivery] = stack.sandbox.webhooks()
    assert delivery["event"] == "workflow.failed" and "JOB_MAX_LLM_COST_USD" in delivery["json"]["error_message"]


def test_without_a_spend_cap_every_call_is_made(make_stack):
    stack = make_stack([{"name": "spender", "steps": [_llm("first"), _llm("second")]}])
    assert stack.run(stack.submit("spender"))["status"] == "completed"
    assert len(_chats(stack)) == 2


# --------------------------------------------------------------------------------------------------------------
# Steps per workflow and parallel width


def _too_long() -> dict:
    children = [_weather(f"w{i}", i) for i in range(3)]
    return {"name": "too_long", "steps": [{"id": "fan", "type": "parallel", "config": {"steps": children}},
                                          {"id": "after", "type": "transform",
                                           "config": {"operation": "template", "config": {"template": "x"}}}]}


def test_a_workflow_over_the_step_limit_is_reported_and_never_runs_a_step(make_stack):
    stack = make_stack([_too_long(), QUICK], workflow_max_steps=3)

    validated = stack.post("/api/v1/workflow/validate", json={"workflow_name": "too_long", "input_data": {}})
    assert validated.get_json()["valid"] is False
    assert "5 steps exceed the limit of 3 (WORKFLOW_MAX_STEPS)" in " ".join(validated.get_json()["errors"])
    listed = {w["name"]: w for w in stack.get("/api/v1/workflows").get_json()["workflows"]}
    assert listed["too_long"]["valid"] is False and listed["quick"]["valid"] is True

    refused = stack.post("/api/v1/workflow", json={"workflow_name": "too_long", "input_data": {}})
    assert refused.status_code == 400
    assert refused.get_json()["detail"]["error"] == "WorkflowValidationError"
    assert "5 steps exceed the limit of 3 (WORKFLOW_MAX_STEPS)" in refused.get_json()["detail"]["message"]

    # a job whose definition grew past the cap after it was queued is refused by the run, before any step
    job_id = str(uuid.uuid4())
    stack.store.create({"job_id": job_id, "workflow_name": "too_long", "input_data": {}})
    assert stack.run(job_id)["status"] == "failed"
    record = stack.store.get(job_id)
    assert record["error"]["type"] == "LimitExceeded"
    assert record["error_message"] == "Workflow 'too_long' has 5 steps; the limit is 3 (WORKFLOW_MAX_STEPS)"
    assert stack.store.steps(job_id) == [] and stack.sandbox.requests() == []


@pytest.mark.parametrize("execution", ["parallel_step", "dependencies"])
def test_parallel_width_bounds_the_requests_in_flight_at_the_upstream(make_stack, execution):
    children = [_weather(f"w{i}", i) for i in range(6)]
    if execution == "parallel_step":
        definition = {"name": "fan", "steps": [{"id": "fan", "type": "parallel",
                                                "config": {"max_concurrency": 50, "steps": children}}]}
    else:
        definition = {"name": "fan", "execution": "dependencies", "steps": children}
    stack = make_stack([definition], parallel_max_width=2)
    stack.sandbox.set_latency(150)  # long enough for unbounded requests to overlap

    job_id = stack.submit("fan")
    assert stack.run(job_id)["status"] == "completed"

    stats = stack.sandbox.stats()
    assert stats["by_path"][WEATHER_PATH] == 6
    assert 1 <= stats["max_in_flight"] <= 2
    if execution == "parallel_step":
        fan = next(e for e in stack.store.steps(job_id) if e["step_id"] == "fan")
        assert "max_concurrency 50 capped at 2 (PARALLEL_MAX_WIDTH)" in fan["warnings"]


# --------------------------------------------------------------------------------------------------------------
# Upstream answers


def test_an_upstream_answering_with_a_huge_body_fails_the_step_instead_of_filling_memory(make_stack):
    stack = make_stack([{"name": "weather", "steps": [_weather("w", 1)]}], http_max_response_bytes=64 * 1024)
    stack.sandbox.add_fault(WEATHER_PATH, "huge_body", count=-1, size=5 * 1024 * 1024)
    job_id = stack.submit("weather")
    assert stack.run(job_id)["status"] == "failed"
    error = stack.store.get(job_id)["error"]
    assert error["category"] == "EXTERNAL_ERROR" and "exceeds 65536 bytes" in error["message"]
