"""OpenAI-compatible providers: the OpenRouter request, response parsing, usage and cost, and error mapping."""
import json
import logging

import pytest
import requests
from responses import matchers

from llm_service.engine.errors import (MissingCredentialError, UpstreamAuthError, UpstreamBadResponse,
                                       UpstreamHTTPError, UpstreamRateLimited, UpstreamServerError, UpstreamTimeout,
                                       WorkflowCancelled)
from llm_service.engine.ports import CancelFlag, ChatRequest
from llm_service.integrations import OpenAICompatibleProvider

KEY = "sk-or-test-key-77e1f0"
BASE = "https://llm.example.test/api/v1"
URL = f"{BASE}/chat/completions"
MESSAGES = [{"role": "user", "content": "Plan for a storm"}]
OK = {"id": "gen-123", "model": "anthropic/claude-3.5-sonnet-20241022",
      "choices": [{"message": {"role": "assistant", "content": "Stock water."}}],
      "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "cost": 0.000111}}


@pytest.fixture
def openrouter(http):
    return OpenAICompatibleProvider("openrouter", http, base_url=BASE + "/", api_key=KEY,
                                    api_key_env="OPENROUTER_API_KEY", display_name="OpenRouter",
                                    usage_accounting=True,
                                    extra_headers={"HTTP-Referer": "https://beprepared.ai", "X-Title": "BePrepared.ai"})


@pytest.fixture
def plain(http):
    return OpenAICompatibleProvider("groq", http, base_url=BASE, api_key=KEY, api_key_env="LLM_PROVIDER_GROQ_API_KEY")


def request(**overrides):
    values = dict(model="anthropic/claude-3.5-sonnet", messages=MESSAGES, temperature=0.7, max_tokens=4000)
    values.update(overrides)
    return ChatRequest(**values)


def sent_body(mock):
    return json.loads(mock.calls[-1].request.body)


def test_openrouter_request_shape(mock, openrouter):
    mock.post(URL, json=OK, match=[matchers.header_matcher({
        "Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
        "HTTP-Referer": "https://beprepared.ai", "X-Title": "BePrepared.ai"})])
    openrouter.complete(request(), timeout=30)
    assert sent_body(mock) == {"model": "anthropic/claude-3.5-sonnet", "messages": MESSAGES, "temperature": 0.7,
                               "max_tokens": 4000, "usage": {"include": True}}  # no top_p when unset


def test_top_p_is_sent_only_when_set_and_usage_accounting_only_when_enabled(mock, plain):
    mock.post(URL, json=OK)
    plain.complete(request(top_p=0.9), timeout=30)
    body = sent_body(mock)
    assert body["top_p"] == 0.9 and "usage" not in body
    assert "HTTP-Referer" not in mock.calls[-1].request.headers


def test_response_format_is_sent_as_given_only_when_set(mock, plain):
    mock.post(URL, json=OK)
    plain.complete(request(), timeout=30)
    assert "response_format" not in sent_body(mock)
    wanted = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}}}
    plain.complete(request(response_format=wanted), timeout=30)
    assert sent_body(mock)["response_format"] == wanted


def test_temperature_none_is_left_to_the_provider_default(mock, plain):
    mock.post(URL, json=OK)
    plain.complete(request(temperature=None), timeout=30)
    assert "temperature" not in sent_body(mock)


def test_response_parsing(mock, openrouter):
    mock.post(URL, json=OK)
    response = openrouter.complete(request(), timeout=30)
    assert response.content == "Stock water."
    assert (response.input_tokens, response.output_tokens, response.total_tokens) == (12, 5, 17)
    assert response.response_id == "gen-123"
    assert response.model_used == "anthropic/claude-3.5-sonnet-20241022"
    assert response.provider_cost_usd == pytest.approx(0.000111)
    assert isinstance(response.duration_ms, int) and response.duration_ms >= 0


def test_total_tokens_defaults_to_the_sum_and_cost_must_be_numeric(mock, plain):
    mock.post(URL, json={**OK, "usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost": "0.1"}})
    response = plain.complete(request(), timeout=30)
    assert response.total_tokens == 7 and response.provider_cost_usd is None


def test_missing_usage_counts_zero_and_says_so(mock, plain, caplog):
    mock.post(URL, json={"choices": OK["choices"]})
    with caplog.at_level(logging.WARNING, logger="llm_service.integrations.llm"):
        response = plain.complete(request(), timeout=30)
    assert (response.input_tokens, response.output_tokens, response.total_tokens) == (0, 0, 0)
    assert response.response_id is None and response.provider_cost_usd is None
    assert "returned no usage" in caplog.text


@pytest.mark.parametrize("payload, message", [
    ({"choices": []}, "No choices in response"),
    ({"id": "x"}, "No choices in response"),
    ({"choices": [{"message": {"content": ""}}]}, "Empty content in response"),
    ({"choices": [{"message": {"content": None}}]}, "Empty content in response"),
    ({"choices": [{"message": {"content": [{"type": "text"}]}}]}, "Empty content in response"),
    ({"choices": ["bad"]}, "Empty content in response"),
])
def test_unusable_responses_are_bad_responses_without_double_prefix(mock, plain, payload, message):
    mock.post(URL, json=payload)
    with pytest.raises(UpstreamBadResponse) as info:
        plain.complete(request(), timeout=30)
    assert str(info.value) == message
    assert (info.value.service, info.value.operation) == ("groq", "chat_completions")


def test_non_json_and_non_object_bodies(mock, plain):
    mock.post(URL, body="<html>gateway</html>", content_type="text/html")
    with pytest.raises(UpstreamBadResponse, match="^Expected JSON from groq, got text/html$"):
        plain.complete(request(), timeout=30)
    mock.replace("POST", URL, json=["not", "an", "object"])
    with pytest.raises(UpstreamBadResponse, match="Expected a JSON object from groq, got list"):
        plain.complete(request(), timeout=30)


@pytest.mark.parametrize("status, body, kind, message", [
    (401, {"error": {"message": f"bad key {KEY}"}}, UpstreamAuthError, "Invalid API key"),
    (403, {}, UpstreamAuthError, "Invalid API key"),
    (429, {}, UpstreamRateLimited, "Rate limit exceeded"),
    (400, {"error": {"message": "max_tokens too large"}}, UpstreamHTTPError, "Bad request: max_tokens too large"),
    (400, {"error": "flat"}, UpstreamHTTPError, "Bad request: Bad request"),
    (400, "not json", UpstreamHTTPError, "Bad request: Bad request"),
    (502, {}, UpstreamServerError, "OpenRouter server error: 502"),
    (404, {}, UpstreamHTTPError, "HTTP error 404"),
])
def test_status_mapping(mock, openrouter, assert_no_secret, status, body, kind, message):
    if isinstance(body, str):
        mock.post(URL, body=body, status=status)
    else:
        mock.post(URL, json=body, status=status)
    with pytest.raises(kind) as info:
        openrouter.complete(request(), timeout=30)
    assert type(info.value) is kind and str(info.value) == message
    assert info.value.status_code == status and info.value.service == "openrouter"
    assert_no_secret(info.value, KEY)


def test_server_error_uses_the_display_name(mock, plain):
    mock.post(URL, status=500, json={})
    with pytest.raises(UpstreamServerError, match="^groq server error: 500$"):
        plain.complete(request(), timeout=30)


def test_bad_request_message_echoing_the_key_is_scrubbed(mock, openrouter, assert_no_secret):
    mock.post(URL, status=400, json={"error": {"message": f"key {KEY} cannot use this model"}})
    with pytest.raises(UpstreamHTTPError) as info:
        openrouter.complete(request(), timeout=30)
    assert str(info.value) == "Bad request: key [REDACTED] cannot use this model"
    assert_no_secret(info.value, KEY)


def test_rate_limit_retry_after_from_header(mock, openrouter):
    mock.post(URL, status=429, json={}, headers={"Retry-After": "17"})
    with pytest.raises(UpstreamRateLimited) as info:
        openrouter.complete(request(), timeout=30)
    assert info.value.retry_after == 17.0


def test_timeout_keeps_the_old_message(mock, openrouter, assert_no_secret):
    mock.post(URL, body=requests.exceptions.ReadTimeout(f"Read timed out (Bearer {KEY})"))
    with pytest.raises(UpstreamTimeout) as info:
        openrouter.complete(request(), timeout=300)
    assert str(info.value) == "Request timed out after 300.0s"
    assert (info.value.service, info.value.operation) == ("openrouter", "chat_completions")
    assert_no_secret(info.value, KEY)


def test_cancellation_is_passed_through(mock, openrouter):
    called = mock.post(URL, json=OK)
    flag = CancelFlag()
    flag.cancel()
    with pytest.raises(WorkflowCancelled, match="Cancelled while waiting for openrouter"):
        openrouter.complete(request(), timeout=30, cancel=flag)
    assert called.call_count == 0


def test_missing_key_names_the_variable_and_sends_nothing(mock, http):
    provider = OpenAICompatibleProvider("groq", http, base_url=BASE, api_key="",
                                        api_key_env="LLM_PROVIDER_GROQ_API_KEY")
    with pytest.raises(MissingCredentialError) as info:
        provider.complete(request(), timeout=30)
    assert str(info.value) == "LLM_PROVIDER_GROQ_API_KEY is not set: LLM provider 'groq' needs it"
    assert len(mock.calls) == 0
