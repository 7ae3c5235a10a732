"""LLM step: structured output (response_format + format retries) and model fallbacks.

The fallback cases go through the real OpenAI-compatible provider with `responses` answering, so the status codes
are mapped to errors exactly as in production."""
from __future__ import annotations

import json

import pytest
import responses

from llm_service.engine.definitions import WorkflowInvalid, parse_workflow
from tests.engine.fake_upstreams import CHAT_URL, chat_body
from tests.engine.fakes import FakeProvider, make_engine, step, write_workflow

SCHEMA = {"type": "object", "required": ["city", "risk"], "additionalProperties": False,
          "properties": {"city": {"type": "string"}, "risk": {"type": "integer", "minimum": 1, "maximum": 5}}}
FORMAT = {"type": "json_schema", "json_schema": {"name": "risk", "strict": True, "schema": SCHEMA}}


def structured_workflow(tmp_path, **config):
    return write_workflow(tmp_path, {"name": "s", "steps": [
        step("rate", "llm", {"prompt_text": "Rate ${city}", "variables": {"city": "${input.city}"},
                             "response_format": FORMAT, **config}),
        step("use", "transform", {"operation": "template", "config": {
            "template": "${c} is ${r}", "variables": {"c": "${steps.rate.output.city}",
                                                      "r": "${steps.rate.output.risk}"}}})]})


def replies(*answers):
    queue = list(answers)
    return lambda request: queue.pop(0)


def test_valid_answer_becomes_the_parsed_output_with_raw_text_kept(tmp_path):
    provider = FakeProvider(replies('```json\n{"city": "Oslo", "risk": 2}\n```'))
    engine = make_engine(tmp_path, provider=provider)
    result = engine.run(structured_workflow(tmp_path), {"city": "Oslo"})
    assert result["success"], result["metadata"].get("error")
    assert result["output"] == "Oslo is 2"
    assert provider.requests[0].response_format == FORMAT and len(provider.requests) == 1
    entry = result["steps_executed"][0]
    assert entry["output"]["parsed"] == {"city": "Oslo", "risk": 2}
    assert entry["output"]["content"].startswith("```json")


def test_invalid_then_valid_retries_with_the_error_fed_back_and_adds_up_usage(tmp_path):
    provider = FakeProvider(replies("Sure! Oslo is fairly safe.", '{"city": "Oslo", "risk": 1}'))
    result = make_engine(tmp_path, provider=provider).run(structured_workflow(tmp_path), {"city": "Oslo"})
    assert result["success"] and result["output"] == "Oslo is 1"
    retry = provider.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": "Sure! Oslo is fairly safe."}
    assert "not valid JSON" in retry[-1]["content"] and '"risk"' in retry[-1]["content"]
    entry = result["steps_executed"][0]
    assert entry["tokens"] == 300  # two calls of 150 tokens each
    assert result["metadata"]["llm_calls"][0]["total_tokens"] == 300
    assert any("structured output attempt 1/2" in w for w in entry["warnings"])


def test_invalid_twice_fails_with_an_external_error_saying_what_did_not_match(tmp_path):
    provider = FakeProvider(replies("nope", "still prose"))
    result = make_engine(tmp_path, provider=provider).run(structured_workflow(tmp_path), {"city": "Oslo"})
    assert not result["success"] and len(provider.requests) == 2
    error = result["metadata"]["error"]
    assert error["category"] == "EXTERNAL_ERROR" and error["type"] == "StructuredOutputError"
    assert "after 2 attempt(s)" in error["message"] and "not valid JSON" in error["message"]
    assert error["retryable"] is False


def test_schema_mismatch_names_the_field_and_max_format_retries_zero_does_not_retry(tmp_path):
    provider = FakeProvider(replies('{"city": "Oslo", "risk": 9}'))
    result = make_engine(tmp_path, provider=provider).run(structured_workflow(tmp_path, max_format_retries=0),
                                                          {"city": "Oslo"})
    assert not result["success"] and len(provider.requests) == 1
    message = result["metadata"]["error"]["message"]
    assert "does not match the schema" in message and "at /risk: 9 is greater than the maximum of 5" in message


def test_json_object_format_only_requires_a_json_object(tmp_path):
    name = write_workflow(tmp_path, {"name": "j", "steps": [step("g", "llm", {
        "prompt_text": "hi", "response_format": {"type": "json_object"}})]})
    result = make_engine(tmp_path, provider=FakeProvider('{"any": ["thing"]}')).run(name, {})
    assert result["success"] and result["output"] == {"any": ["thing"]}


@pytest.mark.parametrize("response_format, fragment", [
    ({"type": "xml"}, "'type' must be one of"),
    ({"type": "json_schema"}, "'json_schema' must be an object with a 'schema'"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "nonsense"}}}, "not a valid JSON Schema"),
])
def test_definitions_reject_unusable_response_formats(response_format, fragment):
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow({"name": "x", "steps": [step("g", "llm", {"prompt_text": "p",
                                                                 "response_format": response_format})]})
    assert any(fragment in line and "response_format" in line for line in caught.value.problems)


def test_models_list_orders_candidates_after_model():
    workflow = parse_workflow({"name": "x", "steps": [
        step("a", "llm", {"prompt_text": "p", "models": ["m/one", "m/two"]}),
        step("b", "llm", {"prompt_text": "p", "model": "m/zero", "models": ["m/one", "m/zero"]})]})
    assert workflow.steps[0].settings.candidate_models == ["m/one", "m/two"]
    assert workflow.steps[1].settings.candidate_models == ["m/zero", "m/one"]


def fallback_workflow(tmp_path):
    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "f.json").write_text(json.dumps({"name": "f", "steps": [step("g", "llm", {
        "prompt_text": "hi", "model": "openai/gpt-4o", "models": ["openai/gpt-4o-mini", "m/third"]})]}))
    return "f"


def chat_by_model(statuses):
    """Answer each request by the model it names: an error status, or a normal completion."""
    def callback(request):
        model = json.loads(request.body)["model"]
        status = statuses.get(model, 200)
        if status != 200:
            return status, {}, json.dumps({"error": {"message": f"{model} is unavailable"}})
        body = chat_body(f"answer from {model}", prompt_tokens=1000, completion_tokens=100)
        return 200, {}, json.dumps({**body, "model": model})
    return callback


def test_first_model_503_falls_back_and_the_answering_model_is_recorded(tmp_path, make_engine):
    engine = make_engine(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, CHAT_URL, callback=chat_by_model({"openai/gpt-4o": 503}))
        result = engine.run(fallback_workflow(tmp_path), {})
        sent = [json.loads(call.request.body)["model"] for call in rsps.calls]
    assert result["success"], result["metadata"].get("error")
    assert sent == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    output = result["output"]
    assert output["content"] == "answer from openai/gpt-4o-mini" and output["model"] == "openai/gpt-4o-mini"
    assert output["cost_usd"] == 0.00021  # gpt-4o-mini prices, not gpt-4o's
    assert output["metadata"]["models_failed"][0]["model"] == "openai/gpt-4o"
    assert "ServerError" in output["metadata"]["models_failed"][0]["error"]
    call = result["metadata"]["llm_calls"][0]
    assert call["model"] == "openai/gpt-4o-mini" and call["cost_usd"] == 0.00021
    assert any("falling back to 'openai/gpt-4o-mini'" in w for w in result["steps_executed"][0]["warnings"])


def test_400_does_not_fall_back(tmp_path, make_engine):
    engine = make_engine(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, CHAT_URL, callback=chat_by_model({"openai/gpt-4o": 400}))
        result = engine.run(fallback_workflow(tmp_path), {})
        assert len(rsps.calls) == 1
    assert not result["success"]
    assert result["metadata"]["error"]["type"] == "HTTPError"


def test_every_model_failing_reports_each_one(tmp_path, make_engine):
    engine = make_engine(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, CHAT_URL, callback=chat_by_model(
            {"openai/gpt-4o": 503, "openai/gpt-4o-mini": 429, "m/third": 502}))
        result = engine.run(fallback_workflow(tmp_path), {})
        assert len(rsps.calls) == 3
    error = result["metadata"]["error"]
    assert error["type"] == "ServerError"
    assert [m["model"] for m in error["details"]["models_failed"]] == ["openai/gpt-4o", "openai/gpt-4o-mini",
                                                                        "m/third"]


def failing(clock=None, advance=0.0):
    from llm_service.engine.errors import UpstreamServerError

    def reply(request):
        if clock is not None:
            clock.advance(advance)
        raise UpstreamServerError(f"{request.model} is down", service="openrouter", status_code=503)
    return reply


def test_fallbacks_run_inside_each_step_attempt_so_retries_start_again_from_the_first_model(tmp_path):
    from tests.engine.fakes import FakeClock

    name = write_workflow(tmp_path, {"name": "r", "steps": [step("g", "llm", {
        "prompt_text": "hi", "model": "m/one", "models": ["m/two"]}, error_mode="retry", retry_count=1)]})
    provider = FakeProvider(failing())
    result = make_engine(tmp_path, provider=provider, clock=FakeClock()).run(name, {})
    assert not result["success"]
    assert [r.model for r in provider.requests] == ["m/one", "m/two", "m/one", "m/two"]


def test_the_deadline_stops_falling_back(tmp_path):
    from tests.engine.fakes import FakeClock

    name = write_workflow(tmp_path, {"name": "d", "timeout_seconds": 60, "steps": [step("g", "llm", {
        "prompt_text": "hi", "model": "m/one", "models": ["m/two"]})]})
    clock = FakeClock()
    provider = FakeProvider(failing(clock, advance=61))
    result = make_engine(tmp_path, provider=provider, clock=clock).run(name, {})
    assert not result["success"] and [r.model for r in provider.requests] == ["m/one"]
    assert result["metadata"]["error"]["type"] == "WorkflowTimeout"


def test_a_format_retry_goes_to_the_model_that_answered(tmp_path):
    from llm_service.engine.errors import UpstreamServerError

    def reply(request):
        if request.model == "m/one":
            raise UpstreamServerError("down", status_code=503)
        return "prose" if len(request.messages) == 1 else '{"city": "Oslo", "risk": 3}'
    provider = FakeProvider(reply)
    result = make_engine(tmp_path, provider=provider).run(
        structured_workflow(tmp_path, model="m/one", models=["m/two"]), {"city": "Oslo"})
    assert result["success"] and result["output"] == "Oslo is 3"
    assert [r.model for r in provider.requests] == ["m/one", "m/two", "m/two"]
    assert result["steps_executed"][0]["output"]["model"] == "m/two"
