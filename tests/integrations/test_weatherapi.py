"""WeatherAPI: the old request shape and messages, typed errors, and no key in any error."""
import pytest
import responses
from responses import matchers

from llm_service.engine.errors import (ConfigurationError, MissingCredentialError, UpstreamAuthError,
                                       UpstreamBadResponse, UpstreamConnectionError, UpstreamHTTPError,
                                       UpstreamRateLimited, UpstreamServerError, UpstreamTimeout, UserInputError)
from llm_service.engine.ports import ServiceResult
from llm_service.integrations import WeatherAPIService

KEY = "wx-test-key-8c1d2e"
BASE = "https://weather.example.test/v1"
URL = f"{BASE}/current.json"
SAMPLE = {"location": {"name": "London"}, "current": {"temp_c": 11.0}}


@pytest.fixture
def weather(http):
    return WeatherAPIService(http, api_key=KEY, base_url=BASE + "/")


def call(weather, params, operation="current"):
    return weather.call(operation, params, timeout=5)


def test_q_is_sent_with_the_key(mock, weather):
    mock.get(URL, json=SAMPLE, match=[matchers.query_param_matcher({"key": KEY, "q": "Paris"}),
                                      matchers.header_matcher({"Accept": "application/json"})])
    result = call(weather, {"q": "Paris"})
    assert isinstance(result, ServiceResult)
    assert result.data == SAMPLE and result.status == 200
    assert result.metadata["status"] == 200 and isinstance(result.metadata["elapsed_ms"], int)


def test_lat_lng_build_q_without_touching_the_callers_params(mock, weather):
    mock.get(URL, json=SAMPLE, match=[matchers.query_param_matcher({"key": KEY, "q": "51.5,-0.12"})])
    params = {"lat": 51.5, "lng": -0.12}
    call(weather, params)
    assert params == {"lat": 51.5, "lng": -0.12}


def test_zero_coordinates_are_coordinates(mock, weather):
    mock.get(URL, json=SAMPLE, match=[matchers.query_param_matcher({"key": KEY, "q": "0,0"})])
    assert call(weather, {"lat": 0, "lng": 0}).data == SAMPLE


@pytest.mark.parametrize("aqi, sent", [(True, "yes"), ("yes", "yes"), (1, "yes"), (False, "no"), (0, "no"),
                                       ("", "no")])
def test_aqi_is_yes_or_no_by_truthiness_and_lang_passes_through(mock, weather, aqi, sent):
    mock.get(URL, json=SAMPLE, match=[matchers.query_param_matcher(
        {"key": KEY, "q": "Oslo", "aqi": sent, "lang": "no"})])
    call(weather, {"q": "Oslo", "aqi": aqi, "lang": "no"})


def test_aqi_is_absent_unless_given(mock, weather):
    mock.get(URL, json=SAMPLE, match=[matchers.query_param_matcher({"key": KEY, "q": "Oslo"})])
    call(weather, {"q": "Oslo"})


@pytest.mark.parametrize("params", [{}, {"lat": 1.0}, {"lng": 2.0}, {"q": ""}, {"q": None, "lat": 1}])
def test_missing_q_is_a_user_error_and_nothing_is_sent(mock, weather, params):
    with pytest.raises(UserInputError) as info:
        call(weather, params)
    assert str(info.value) == "Missing required parameter: q (or lat/lng)"
    assert (info.value.service, info.value.operation) == ("weatherapi", "current")
    assert len(mock.calls) == 0


def test_missing_key_is_a_credential_error_before_any_request(mock, http):
    with pytest.raises(MissingCredentialError) as info:
        WeatherAPIService(http, api_key="", base_url=BASE).call("current", {"q": "x"}, timeout=5)
    assert str(info.value) == "WEATHERAPI_API_KEY is not set: the weatherapi service needs it"
    assert len(mock.calls) == 0


def test_unsupported_operation(weather):
    with pytest.raises(ConfigurationError) as info:
        call(weather, {"q": "x"}, operation="forecast")
    assert str(info.value) == "Unsupported operation: forecast. Supported: ['current']"


def test_operations_describe_the_parameters(weather):
    spec = weather.operations["current"]
    assert spec.required == () and {"q", "lat", "lng", "aqi", "lang"} <= set(spec.optional)
    assert spec.alternatives == (("q",), ("lat", "lng"))


@pytest.mark.parametrize("status, body, kind, message", [
    (401, {"error": {"code": 2006, "message": "API key is invalid."}}, UpstreamAuthError,
     "Invalid API key or API key not provided"),
    (403, {"error": {"code": 2007, "message": "quota"}}, UpstreamAuthError,
     "API key has been disabled or exceeded quota"),
    (400, {"error": {"code": 1006, "message": "No matching location found."}}, UpstreamHTTPError,
     "Bad request: No matching location found."),
    (400, "plain failure text", UpstreamHTTPError, "Bad request: plain failure text"),
    (404, "nope", UpstreamHTTPError, "HTTP 404: nope"),
    (500, "boom", UpstreamServerError, "Server error (500): boom"),
    (503, "", UpstreamServerError, "Server error (503): "),
    (429, "slow down", UpstreamRateLimited, "API quota exceeded: slow down"),
])
def test_status_mapping(mock, weather, assert_no_secret, status, body, kind, message):
    if isinstance(body, dict):
        mock.get(URL, json=body, status=status)
    else:
        mock.get(URL, body=body, status=status)
    with pytest.raises(kind) as info:
        call(weather, {"q": "x"})
    assert type(info.value) is kind
    assert str(info.value) == message
    assert (info.value.service, info.value.operation, info.value.status_code) == ("weatherapi", "current", status)
    assert_no_secret(info.value, KEY)


def test_rate_limit_carries_retry_after(mock, weather):
    mock.get(URL, body="too many", status=429, headers={"Retry-After": "42"})
    with pytest.raises(UpstreamRateLimited) as info:
        call(weather, {"q": "x"})
    assert info.value.retry_after == 42.0 and info.value.retryable


def test_body_snippets_are_cut_to_200_chars_and_scrubbed_of_the_key(mock, weather, assert_no_secret):
    mock.get(URL, body=f"echo key={KEY} " + "x" * 500, status=502)
    with pytest.raises(UpstreamServerError) as info:
        call(weather, {"q": "x"})
    snippet = str(info.value)[len("Server error (502): "):]
    assert len(snippet) == 200 and "[REDACTED]" in snippet
    assert_no_secret(info.value, KEY)


@pytest.mark.parametrize("error, message", [
    ({"code": 1003, "message": "Parameter q is missing."}, "WeatherAPI error (1003): Parameter q is missing."),
    ({}, "WeatherAPI error (unknown): Unknown error"),
    ("broken", "WeatherAPI error (unknown): Unknown error"),
])
def test_error_inside_a_200(mock, weather, error, message):
    mock.get(URL, json={"error": error})
    with pytest.raises(UpstreamHTTPError) as info:
        call(weather, {"q": "x"})
    assert str(info.value) == message


def test_non_json_success_is_a_bad_response(mock, weather):
    mock.get(URL, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(UpstreamBadResponse) as info:
        call(weather, {"q": "x"})
    assert str(info.value) == "Expected JSON from weatherapi, got text/html"
    assert info.value.operation == "current"


def test_transport_errors_carry_service_and_operation_but_not_the_key(mock, weather, assert_no_secret):
    import requests
    mock.get(URL, body=requests.exceptions.ConnectTimeout(f"timed out: {URL}?key={KEY}&q=x"))
    with pytest.raises(UpstreamTimeout) as info:
        call(weather, {"q": "x"})
    assert str(info.value) == "Request timeout after 5s"
    assert (info.value.service, info.value.operation) == ("weatherapi", "current")
    assert_no_secret(info.value, KEY)
    mock.replace(responses.GET, URL, body=requests.exceptions.ConnectionError(f"refused: {URL}?key={KEY}"))
    with pytest.raises(UpstreamConnectionError) as info:
        call(weather, {"q": "x"})
    assert info.value.operation == "current"
    assert_no_secret(info.value, KEY)
