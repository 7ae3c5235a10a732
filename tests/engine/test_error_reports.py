"""What an operator and the client app read when a step fails: the old service's wording and details, and the
run listener that drives live progress."""
from __future__ import annotations

from llm_service.engine.errors import UpstreamRateLimited, UpstreamServerError
from tests.engine.fakes import FakeClock, FakeProvider, FakeService, api_step, make_engine, step, write_workflow


def test_suggestions_given_to_an_error_are_kept(tmp_path):
    def down(params, **_):
        raise UpstreamServerError("Server error (503): down", suggestions=["Page the on-call for the fake API."])

    name = write_workflow(tmp_path, {"name": "wf", "steps": [api_step("a", "down")]})
    error = make_engine(tmp_path, FakeService("fake", down=down)).run(name, {})["metadata"]["error"]
    assert error["suggestions"] == ["Page the on-call for the fake API."]
    assert error["details"]["suggestions"] == ["Page the on-call for the fake API."]


def test_a_429_without_retry_after_advises_60_s_but_retries_wait_only_their_backoff(tmp_path):
    def limited(params, **_):
        raise UpstreamRateLimited("API quota exceeded: slow down")

    clock = FakeClock()
    name = write_workflow(tmp_path, {"name": "wf", "steps": [
        api_step("a", "limited", error_mode="retry", retry_count=2, retry_delay=0.5)]})
    error = make_engine(tmp_path, FakeService("fake", limited=limited), clock=clock).run(name, {})["metadata"]["error"]
    assert error["retry_after"] == 60 and error["details"]["retry_after"] == 60
    assert clock.sleeps and max(clock.sleeps) < 2  # the advice is for a person resubmitting, not for the engine


def test_external_api_errors_carry_the_resolved_inputs_redacted_and_the_config(tmp_path):
    def down(params, **_):
        raise UpstreamServerError("Server error (500): boom")

    params = {"location": "${input.lat},${input.lng}", "api_key": "${input.key}", "keyword": "hospital"}
    name = write_workflow(tmp_path, {"name": "wf", "steps": [api_step("places", "down", params)]})
    result = make_engine(tmp_path, FakeService("fake", down=down)).run(
        name, {"lat": 47.6, "lng": -122.3, "key": "user-supplied-key-123456"})
    details = result["metadata"]["error"]["details"]
    assert details["inputs"] == {"location": "47.6,-122.3", "api_key": "[REDACTED]", "keyword": "hospital"}
    assert details["config"]["parameters"] == {**params, "api_key": "[REDACTED]"}
    assert details["config"]["service"] == "fake" and details["service"] == "fake"
    assert "user-supplied-key-123456" not in str(result)


def test_llm_failures_use_the_old_step_level_wording(tmp_path):
    def refuse(request):
        raise UpstreamRateLimited("Rate limit exceeded", service="openrouter")

    name = write_workflow(tmp_path, {"name": "wf", "steps": [step("gen", "llm", {"prompt_text": "hi"})]})
    error = make_engine(tmp_path, provider=FakeProvider(refuse)).run(name, {})["metadata"]["error"]
    assert error["message"] == "LLM step 'gen' execution failed: Rate limit exceeded"
    assert error["type"] == "RateLimitError" and error["step_id"] == "gen"


def test_prompt_template_failures_use_the_old_wording(tmp_path):
    name = write_workflow(tmp_path, {"name": "wf", "steps": [
        step("gen", "llm", {"prompt_template": "missing.md"})]})
    error = make_engine(tmp_path).run(name, {})["metadata"]["error"]
    assert error["message"] == "Error loading prompt template 'missing.md': Prompt file not found: missing.md"
    assert error["category"] == "CONFIG_ERROR"


def test_a_run_listener_hears_each_step_start_and_finish_with_its_display_name(tmp_path):
    class Listener:
        def __init__(self):
            self.heard = []

        def step_started(self, step_id, position, total, name):
            self.heard.append(("started", step_id, position, total, name))

        def step_finished(self, step_id, finished, total, entry):
            self.heard.append(("finished", step_id, finished, total, entry["success"]))

    listener = Listener()
    name = write_workflow(tmp_path, {"name": "wf", "steps": [
        api_step("a", display_name="Fetch things"), api_step("b", name="Also fetch")]})
    make_engine(tmp_path, FakeService("fake", echo=lambda p, **_: p)).run(name, {}, progress=listener)
    assert listener.heard == [("started", "a", 1, 2, "Fetch things"), ("finished", "a", 1, 2, True),
                              ("started", "b", 2, 2, "Also fetch"), ("finished", "b", 2, 2, True)]
