"""Google Places: request shapes of the three operations, Google's in-body statuses, HTTP errors, no key leaks."""
import pytest
from responses import matchers

from llm_service.engine.errors import (ConfigurationError, MissingCredentialError, UpstreamAuthError,
                                       UpstreamBadResponse, UpstreamHTTPError, UpstreamRateLimited,
                                       UpstreamServerError, UserInputError)
from llm_service.integrations import GooglePlacesService

KEY = "gp-test-key-41b7aa"
BASE = "https://places.example.test/maps/api/place"
NEARBY, TEXT, DETAILS = f"{BASE}/nearbysearch/json", f"{BASE}/textsearch/json", f"{BASE}/details/json"


@pytest.fixture
def places(http):
    return GooglePlacesService(http, api_key=KEY, base_url=BASE)


def call(places, operation, params):
    return places.call(operation, params, timeout=5)


def test_nearby_search_request_shape(mock, places):
    body = {"results": [{"name": "Clinic"}], "status": "OK"}
    mock.get(NEARBY, json=body, match=[matchers.query_param_matcher(
        {"location": "51.5,-0.12", "radius": "8000", "type": "hospital", "keyword": "er", "key": KEY})])
    result = call(places, "nearby_search", {"location": "51.5,-0.12", "radius": 8000, "type": "hospital",
                                            "keyword": "er", "ignored": "x"})
    assert result.data == body and result.status == 200


def test_text_search_and_place_details_request_shapes(mock, places):
    mock.get(TEXT, json={"results": [], "status": "ZERO_RESULTS"}, match=[matchers.query_param_matcher(
        {"query": "fire station", "language": "en", "key": KEY})])
    assert call(places, "text_search", {"query": "fire station", "language": "en"}).data["status"] == "ZERO_RESULTS"
    mock.get(DETAILS, json={"result": {"name": "X"}, "status": "OK"}, match=[matchers.query_param_matcher(
        {"place_id": "abc", "fields": "name,formatted_phone_number", "key": KEY})])
    assert call(places, "place_details", {"place_id": "abc", "fields": "name,formatted_phone_number"}
                ).data["result"] == {"name": "X"}


@pytest.mark.parametrize("operation, params, missing", [
    ("nearby_search", {"radius": 5}, "location"),
    ("nearby_search", {"location": "1,2"}, "radius"),
    ("nearby_search", {"location": "", "radius": 5}, "location"),
    ("text_search", {}, "query"),
    ("place_details", {"fields": "name"}, "place_id"),
])
def test_missing_required_parameters(mock, places, operation, params, missing):
    with pytest.raises(UserInputError) as info:
        call(places, operation, params)
    assert str(info.value) == f"Missing required parameter: {missing}"
    assert (info.value.service, info.value.operation) == ("google_places", operation)
    assert len(mock.calls) == 0


def test_missing_key_names_both_variables(mock, http):
    with pytest.raises(MissingCredentialError) as info:
        GooglePlacesService(http, api_key="", base_url=BASE).call("text_search", {"query": "x"}, timeout=5)
    assert "GOOGLE_PLACES_API_KEY" in str(info.value)
    assert "NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY" in str(info.value)
    assert len(mock.calls) == 0


def test_unsupported_operation_lists_the_supported_ones(places):
    with pytest.raises(ConfigurationError) as info:
        call(places, "autocomplete", {})
    assert str(info.value) == ("Unsupported operation: autocomplete. "
                               "Supported: ['nearby_search', 'text_search', 'place_details']")


def test_operation_specs(places):
    assert places.operations["nearby_search"].required == ("location", "radius")
    assert places.operations["text_search"].optional == ("location", "radius", "type", "language")
    assert places.operations["place_details"].optional == ("fields", "language")


@pytest.mark.parametrize("operation, url, params, payload, kind, message", [
    ("nearby_search", NEARBY, {"location": "1,2", "radius": 1},
     {"status": "REQUEST_DENIED", "error_message": "The provided API key is invalid."}, UpstreamAuthError,
     "API request denied: The provided API key is invalid."),
    ("text_search", TEXT, {"query": "q"}, {"status": "REQUEST_DENIED"}, UpstreamAuthError,
     "API request denied: Unknown error"),
    ("text_search", TEXT, {"query": "q"}, {"status": "OVER_QUERY_LIMIT", "error_message": "quota"},
     UpstreamRateLimited, "API quota exceeded: quota"),
    ("place_details", DETAILS, {"place_id": "pid-9"}, {"status": "NOT_FOUND"}, UpstreamHTTPError,
     "Place not found: pid-9"),
    ("place_details", DETAILS, {"place_id": "pid-9"}, {"status": "ZERO_RESULTS"}, UpstreamHTTPError,
     "API error (ZERO_RESULTS): Unknown error"),
    ("nearby_search", NEARBY, {"location": "1,2", "radius": 1}, {"status": "INVALID_REQUEST"}, UpstreamHTTPError,
     "API error (INVALID_REQUEST): Unknown error"),
    ("nearby_search", NEARBY, {"location": "1,2", "radius": 1}, {"status": "UNKNOWN_ERROR"}, UpstreamServerError,
     "API error (UNKNOWN_ERROR): Unknown error"),
    ("text_search", TEXT, {"query": "q"}, {"results": []}, UpstreamHTTPError,
     "API error (missing status): Unknown error"),
])
def test_google_statuses(mock, places, assert_no_secret, operation, url, params, payload, kind, message):
    mock.get(url, json=payload)
    with pytest.raises(kind) as info:
        call(places, operation, params)
    assert type(info.value) is kind and str(info.value) == message
    assert (info.value.service, info.value.operation) == ("google_places", operation)
    assert_no_secret(info.value, KEY)


def test_unknown_error_is_retryable_and_denied_is_not(mock, places):
    mock.get(TEXT, json={"status": "UNKNOWN_ERROR"})
    with pytest.raises(UpstreamServerError) as info:
        call(places, "text_search", {"query": "q"})
    assert info.value.retryable
    mock.replace("GET", TEXT, json={"status": "REQUEST_DENIED"})
    with pytest.raises(UpstreamAuthError) as info:
        call(places, "text_search", {"query": "q"})
    assert not info.value.retryable


@pytest.mark.parametrize("status, kind, message", [
    (401, UpstreamAuthError, "Authentication failed: denied"),
    (403, UpstreamAuthError, "Authentication failed: denied"),
    (429, UpstreamRateLimited, "API quota exceeded: denied"),
    (500, UpstreamServerError, "Server error (500): denied"),
    (418, UpstreamHTTPError, "HTTP 418: denied"),
])
def test_http_status_mapping(mock, places, status, kind, message):
    mock.get(NEARBY, body="denied", status=status)
    with pytest.raises(kind) as info:
        call(places, "nearby_search", {"location": "1,2", "radius": 1})
    assert str(info.value) == message and info.value.status_code == status


def test_html_instead_of_json(mock, places):
    mock.get(TEXT, body="<html></html>", content_type="text/html")
    with pytest.raises(UpstreamBadResponse, match="^Expected JSON from google_places, got text/html$"):
        call(places, "text_search", {"query": "q"})


def test_error_message_echoing_the_key_is_scrubbed(mock, places, assert_no_secret):
    mock.get(TEXT, json={"status": "REQUEST_DENIED", "error_message": f"Key {KEY} is not authorized"})
    with pytest.raises(UpstreamAuthError) as info:
        call(places, "text_search", {"query": "q"})
    assert str(info.value) == "API request denied: Key [REDACTED] is not authorized"
    assert_no_secret(info.value, KEY)
