"""Runner semantics: records, error modes, retries, outputs, deadline, cancellation, progress.

Each DECISIONS change has its own test here (the places `continue` and the original workflow live in
test_compat_original_workflow.py; regex groups in transforms/)."""
from __future__ import annotations

import pytest

from tests.engine.fakes import FakeClock, FakeProvider, FakeService, api_step, make_engine, step, write_workflow
from llm_service.engine import EngineLimits
from llm_service.engine.errors import (UpstreamAuthError, UpstreamRateLimited, UpstreamServerError,
                                       UpstreamTimeout)
from llm_service.engine.ports import CancelFlag


def echo(params, **_):
    return dict(params)


def workflow(*steps, **root):
    return {"name": root.pop("name", "wf"), "steps": list(steps), **root}


def test_outputs_mapping_resolves_nested_values_and_keeps_types(tmp_path):
    name = write_workflow(tmp_path, workflow(
        api_step("a", params={"n": "${input.n}", "items": ["${input.x}", 2]}),
        step("b", "llm", {"prompt_text": "Say ${word}", "variables": {"word": "${input.x}"}},
             outputs=["text"]),
        outputs={"count": "${steps.a.data.n}", "nested": {"list": ["${steps.a.data.items}", "lit"]},
                 "text": "${steps.b.text}", "usage": "${steps.b.llm_usage}", "missing": "${steps.a.data.nope}",
                 "sentence": "n=${steps.a.data.n} of ${input.x}"}))
    engine = make_engine(tmp_path, FakeService("fake", echo=echo), provider=FakeProvider("hello"))
    result = engine.run(name, {"n": 3, "x": "y"})
    assert result["success"]
    assert result["output"] == {
        "count": 3, "nested": {"list": [["y", 2], "lit"]}, "text": "hello",
        "usage": {"provider": "openrouter", "model": "anthropic/claude-3.5-sonnet", "input_tokens": 100,
                  "output_tokens": 50, "total_tokens": 150, "cost_usd": 0.00105, "duration_ms": 5},
        "missing": None, "sentence": "n=3 of y"}


def test_without_outputs_the_last_steps_output_is_the_result(tmp_path):
    name = write_workflow(tmp_path, workflow(api_step("a", params={"v": 1}), api_step("b", params={"v": 2})))
    result = make_engine(tmp_path, FakeService("fake", echo=echo)).run(name, {})
    assert result["output"] == {"success": True, "data": {"v": 2}, "cached": False, "metadata": {"fake": True}}


def test_llm_step_exposes_llm_usage_and_old_record_layout(tmp_path):
    name = write_workflow(tmp_path, workflow(
        step("gen", "llm", {"prompt_text": "hi", "model": "openai/gpt-4o"}),
        step("use", "transform", {"operation": "template", "config": {
            "template": "${a}|${b}|${c}",
            "variables": {"a": "${steps.gen.content}", "b": "${steps.gen.output.usage.total_tokens}",
                          "c": "${steps.gen.llm_usage.cost_usd}"}}})))
    result = make_engine(tmp_path, provider=FakeProvider("text")).run(name, {})
    assert result["output"] == "text|150|0.00075"
    gen = result["steps_executed"][0]
    assert gen["tokens"] == 150 and gen["cost_usd"] == 0.00075
    assert gen["output"]["content"] == "text"


def test_provider_reported_cost_wins_over_the_price_table(tmp_path):
    name = write_workflow(tmp_path, workflow(step("gen", "llm", {"prompt_text": "hi"})))
    result = make_engine(tmp_path, provider=FakeProvider("x", cost=0.0123)).run(name, {})
    assert result["metadata"]["total_cost_usd"] == 0.0123
    assert result["output"]["metadata"]["cost_source"] == "provider"


def test_continue_failure_is_recorded_and_references_into_it_give_null(tmp_path):
    def broken(params, **_):
        raise UpstreamServerError("Server error (500): boom")

    name = write_workflow(tmp_path, workflow(
        api_step("bad", "broken", error_mode="continue"),
        api_step("after", params={"got": "${steps.bad.data.results}", "ok": "${steps.bad.success}",
                                  "text": "x=${steps.bad.data.results}"})))
    result = make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(name, {})
    assert result["success"]
    bad, after = result["steps_executed"]
    assert bad["success"] is False and bad["error"]["message"] == "Server error (500): boom"
    assert bad["error"]["category"] == "EXTERNAL_ERROR" and bad["error"]["step_id"] == "bad"
    assert after["output"]["data"] == {"got": None, "ok": False, "text": "x=null"}


def test_step_level_error_mode_governs_over_inner_and_default(tmp_path):
    def broken(params, **_):
        raise UpstreamServerError("nope")

    bad_inner_continue = api_step("a", "broken", error_mode="fail")
    bad_inner_continue["config"]["error_mode"] = "continue"
    name = write_workflow(tmp_path, workflow(bad_inner_continue, api_step("b")))
    result = make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(name, {})
    assert not result["success"] and result["metadata"]["error"]["step_id"] == "a"

    only_inner = api_step("a", "broken")
    only_inner["config"]["error_mode"] = "continue"
    name = write_workflow(tmp_path, workflow(only_inner, api_step("b"), name="inner"))
    assert make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(name, {})["success"]

    name = write_workflow(tmp_path, workflow(api_step("a", "broken"), api_step("b"), name="dflt",
                                             default_error_mode="continue"))
    assert make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(name, {})["success"]


def test_fail_mode_stops_the_workflow_with_a_structured_error(tmp_path):
    def denied(params, **_):
        raise UpstreamAuthError("Invalid API key", service="fake")

    service = FakeService("fake", echo=echo, denied=denied)
    name = write_workflow(tmp_path, workflow(api_step("a"), api_step("b", "denied"), api_step("c")))
    result = make_engine(tmp_path, service).run(name, {})
    assert result["success"] is False and result["output"] is None
    error = result["metadata"]["error"]
    assert {k: error[k] for k in ("type", "category", "message", "retryable", "step_id")} == {
        "type": "AuthenticationError", "category": "EXTERNAL_ERROR", "message": "Invalid API key",
        "retryable": False, "step_id": "b"}
    assert [s["step_id"] for s in result["steps_executed"]] == ["a", "b"]
    assert [c[0] for c in service.calls] == ["echo", "denied"]


def test_retry_honours_retry_after_and_then_succeeds(tmp_path):
    attempts = []

    def flaky(params, **_):
        attempts.append(1)
        if len(attempts) < 3:
            raise UpstreamRateLimited("Rate limit exceeded", retry_after=7)
        return {"ok": True}

    clock = FakeClock()
    name = write_workflow(tmp_path, workflow(api_step("a", "flaky", error_mode="retry", retry_delay=0.5)))
    result = make_engine(tmp_path, FakeService("fake", flaky=flaky), clock=clock).run(name, {})
    assert result["success"] and len(attempts) == 3
    assert result["steps_executed"][0]["attempts"] == 3
    waited = sum(clock.sleeps)
    assert waited == pytest.approx(14, abs=0.01)  # two waits, each the upstream's Retry-After (7 s)


def test_retry_backs_off_exponentially_and_gives_up_after_retry_count(tmp_path):
    calls = []

    def down(params, **_):
        calls.append(1)
        raise UpstreamTimeout("Request timeout after 30s")

    clock = FakeClock()
    name = write_workflow(tmp_path, workflow(api_step("a", "down", error_mode="retry", retry_count=2,
                                                      retry_delay=1)))
    result = make_engine(tmp_path, FakeService("fake", down=down), clock=clock).run(name, {})
    assert not result["success"] and len(calls) == 3
    assert 1.5 <= sum(clock.sleeps) <= 3.0  # jittered 0.5-1 s, then 1-2 s
    assert result["metadata"]["error"]["type"] == "TimeoutError"
    assert result["steps_executed"][0]["attempts"] == 3


def test_retry_does_not_retry_errors_that_cannot_succeed(tmp_path):
    calls = []

    def denied(params, **_):
        calls.append(1)
        raise UpstreamAuthError("Invalid API key")

    name = write_workflow(tmp_path, workflow(api_step("a", "denied", error_mode="retry")))
    result = make_engine(tmp_path, FakeService("fake", denied=denied), clock=FakeClock()).run(name, {})
    assert not result["success"] and len(calls) == 1


def test_cancellation_between_steps(tmp_path):
    flag = CancelFlag()

    def cancel_then_echo(params, **_):
        flag.cancel()
        return {}

    service = FakeService("fake", first=cancel_then_echo, echo=echo)
    name = write_workflow(tmp_path, workflow(api_step("a", "first"), api_step("b"), api_step("c")))
    result = make_engine(tmp_path, service).run(name, {}, cancel=flag)
    assert result["success"] is False and result["metadata"]["cancelled"] is True
    assert result["metadata"]["error"]["type"] == "WorkflowCancelled"
    assert [c[0] for c in service.calls] == ["first"]
    assert [s["step_id"] for s in result["steps_executed"]] == ["a"]


def test_cancellation_while_waiting_to_retry(tmp_path):
    flag = CancelFlag()

    class CancellingClock(FakeClock):
        def sleep(self, seconds):
            super().sleep(seconds)
            flag.cancel()

    def down(params, **_):
        raise UpstreamServerError("Server error (503): busy")

    service = FakeService("fake", down=down)
    name = write_workflow(tmp_path, workflow(api_step("a", "down", error_mode="retry", retry_count=5)))
    result = make_engine(tmp_path, service, clock=CancellingClock()).run(name, {}, cancel=flag)
    assert result["metadata"]["cancelled"] is True
    assert len(service.calls) == 1


def test_deadline_clips_upstream_timeouts_and_stops_later_steps(tmp_path):
    clock = FakeClock()

    def slow(params, timeout, **_):
        clock.advance(8)
        return {"timeout_given": timeout}

    service = FakeService("fake", slow=slow, echo=echo)
    name = write_workflow(tmp_path, workflow(api_step("a", "slow"), api_step("b", "slow"), api_step("c"),
                                             timeout_seconds=10))
    result = make_engine(tmp_path, service, clock=clock).run(name, {})
    assert [c[2] for c in service.calls] == [10, 2]  # min(30 s own timeout, time left)
    assert result["success"] is False
    assert result["metadata"]["error"]["type"] == "WorkflowTimeout"
    assert "exceeded timeout (10s)" in result["metadata"]["error"]["message"]


def test_llm_timeout_is_clipped_by_the_deadline(tmp_path):
    provider = FakeProvider("x")
    name = write_workflow(tmp_path, workflow(step("g", "llm", {"prompt_text": "p", "timeout": 5}),
                                             step("h", "llm", {"prompt_text": "p"}), timeout_seconds=60))
    make_engine(tmp_path, provider=provider, clock=FakeClock()).run(name, {})
    assert provider.timeouts == [5, 60]


def test_progress_callback_reports_each_step_and_its_failures_are_ignored(tmp_path):
    seen = []

    def progress(step_id, done, total, entry):
        seen.append((step_id, done, total, entry["success"]))
        raise RuntimeError("redis blipped")

    name = write_workflow(tmp_path, workflow(api_step("a"), api_step("b")))
    result = make_engine(tmp_path, FakeService("fake", echo=echo)).run(name, {}, progress=progress)
    assert result["success"]
    assert seen == [("a", 1, 2, True), ("b", 2, 2, True)]


def test_missing_api_key_fails_only_the_step_that_needs_it(tmp_path, make_engine):
    """A missing key is a CONFIG_ERROR naming the variable (real integrations, no upstream reached)."""
    import json

    from llm_service.config import Config

    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "w.json").write_text(json.dumps(workflow(
        step("weather", "external_api", {"service": "weatherapi", "method": "current",
                                         "parameters": {"q": "1,2"}}, error_mode="continue"),
        step("note", "transform", {"operation": "template", "config": {"template": "done"}}), name="w")))
    engine = make_engine(tmp_path, config=Config.from_env({}))
    result = engine.run("w", {})
    assert result["success"]
    error = result["steps_executed"][0]["error"]
    assert error["category"] == "CONFIG_ERROR" and "WEATHERAPI_API_KEY" in error["message"]


def test_embedded_unresolvable_placeholder_is_a_warning_left_verbatim(tmp_path):
    provider = FakeProvider("x")
    name = write_workflow(tmp_path, workflow(step("g", "llm", {
        "prompt_text": "City: ${city}", "variables": {"city": "near ${input.city_name} today"}})))
    result = make_engine(tmp_path, provider=provider).run(name, {})
    assert result["success"]
    assert provider.requests[0].messages[0]["content"] == "City: near ${input.city_name} today"
    assert any("input.city_name" in w for w in result["steps_executed"][0]["warnings"])
    assert result["metadata"]["warnings"]


def test_whole_string_reference_to_missing_input_fails_the_step_with_a_user_error(tmp_path):
    name = write_workflow(tmp_path, workflow(step("g", "llm", {"prompt_text": "${c}",
                                                               "variables": {"c": "${input.city}"}})))
    result = make_engine(tmp_path).run(name, {})
    error = result["metadata"]["error"]
    assert error["category"] == "USER_ERROR" and "${input.city}" in error["message"]


def test_include_errors_fail_the_step_with_config_error(tmp_path):
    name = write_workflow(tmp_path, workflow(step("g", "llm", {"prompt_template": "main.md"})),
                          prompts={"main.md": "A {{include:missing.md}}", "loop.md": "{{include:loop.md}}"})
    result = make_engine(tmp_path).run(name, {})
    assert result["metadata"]["error"]["category"] == "CONFIG_ERROR"
    assert "missing.md" in result["metadata"]["error"]["message"]

    name = write_workflow(tmp_path, workflow(step("g", "llm", {"prompt_template": "loop.md"}), name="loop"))
    error = make_engine(tmp_path).run(name, {})["metadata"]["error"]
    assert error["category"] == "CONFIG_ERROR" and "Circular include" in error["message"]


def test_system_prompt_and_user_message_are_additive(tmp_path):
    provider = FakeProvider("x")
    name = write_workflow(tmp_path, workflow(step("g", "llm", {
        "prompt_template": "p.md", "system_prompt": "Be brief about ${topic}.", "user_message": "${input.q}",
        "variables": {"topic": "weather"}, "provider": "openrouter"})), prompts={"p.md": "Topic: ${topic}"})
    make_engine(tmp_path, provider=provider).run(name, {"q": "Will it rain?"})
    assert provider.requests[0].messages == [
        {"role": "system", "content": "Be brief about weather."},
        {"role": "user", "content": "Topic: weather"},
        {"role": "user", "content": "Will it rain?"}]


def test_limits_cap_steps_tokens_and_spend(tmp_path):
    provider = FakeProvider("x", cost=1.0)
    name = write_workflow(tmp_path, workflow(step("a", "llm", {"prompt_text": "p", "max_tokens": 9000}),
                                             step("b", "llm", {"prompt_text": "p"})))
    engine = make_engine(tmp_path, provider=provider,
                         limits=EngineLimits(llm_max_tokens_cap=2000, max_llm_cost_usd=0.5))
    result = engine.run(name, {})
    assert provider.requests[0].max_tokens == 2000
    assert len(provider.requests) == 1
    assert result["metadata"]["error"]["type"] == "LimitExceeded"

    engine = make_engine(tmp_path, provider=FakeProvider("x"), limits=EngineLimits(max_steps=1))
    result = engine.run(name, {})
    assert result["metadata"]["error"]["type"] == "LimitExceeded" and "WORKFLOW_MAX_STEPS" in \
        result["metadata"]["error"]["message"]


def test_declared_input_defaults_are_applied(tmp_path):
    name = write_workflow(tmp_path, workflow(api_step("a", params={"tier": "${input.tier}"}),
                                             inputs=[{"name": "tier", "default": "free"},
                                                     {"name": "city", "required": True}]))
    result = make_engine(tmp_path, FakeService("fake", echo=echo)).run(name, {})
    assert result["output"]["data"] == {"tier": "free"}
    assert any("city" in w for w in result["metadata"]["warnings"])
