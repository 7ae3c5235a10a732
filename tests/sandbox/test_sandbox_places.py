from __future__ import annotations

import pytest

LOCATION = "37.7749,-122.4194"


def _get(http, sandbox, operation, **params):
    url = f"{sandbox.base_urls()['GOOGLE_PLACES_BASE_URL']}/{operation}/json"
    response = http.get(url, params=params, timeout=5)
    assert response.status_code == 200
    assert response.headers["X-Sandbox"] == "true"
    return response.json()


def _nearby(http, sandbox, place_type):
    return _get(http, sandbox, "nearbysearch", key="k", location=LOCATION, radius=8000, type=place_type)


@pytest.mark.parametrize("place_type, word", [
    ("hospital", ("Hospital", "Medical", "Care")),
    ("police", ("Police", "Sheriff", "Patrol")),
    ("fire_station", ("Fire",)),
])
def test_nearby_search_returns_three_plausible_places(sandbox, http, place_type, word):
    body = _nearby(http, sandbox, place_type)

    assert body["status"] == "OK" and body["sandbox"] is True
    assert len(body["results"]) == 3
    assert len({place["name"] for place in body["results"]}) == 3
    for place in body["results"]:
        assert any(w in place["name"] for w in word), place["name"]
        assert place_type in place["types"]
        assert {"vicinity", "place_id", "rating", "business_status"} <= set(place)
        assert set(place["geometry"]["location"]) == {"lat", "lng"}
        assert isinstance(place["opening_hours"]["open_now"], bool)


def test_other_types_get_generic_names(sandbox, http):
    body = _nearby(http, sandbox, "pharmacy")

    assert all("Pharmacy" in place["name"] for place in body["results"])


def test_nearby_search_is_deterministic(sandbox, http):
    assert _nearby(http, sandbox, "hospital") == _nearby(http, sandbox, "hospital")
    assert _nearby(http, sandbox, "hospital") != _nearby(http, sandbox, "police")


def test_details_of_a_search_result_agree_with_it(sandbox, http):
    place = _nearby(http, sandbox, "hospital")["results"][0]

    body = _get(http, sandbox, "details", key="k", place_id=place["place_id"])

    result = body["result"]
    assert body["status"] == "OK"
    assert result["name"] == place["name"]
    assert result["place_id"] == place["place_id"]
    assert result["formatted_phone_number"].startswith("(")
    assert result["international_phone_number"].startswith("+1 ")
    assert result["website"].startswith("https://")
    assert result["formatted_address"].startswith(place["vicinity"])


def test_details_fields_parameter_limits_the_result(sandbox, http):
    place_id = _nearby(http, sandbox, "police")["results"][1]["place_id"]

    body = _get(http, sandbox, "details", key="k", place_id=place_id, fields="name,formatted_phone_number")

    assert set(body["result"]) == {"name", "formatted_phone_number"}


def test_unknown_place_id_is_not_found(sandbox, http):
    assert _get(http, sandbox, "details", key="k", place_id="ChIJnot-a-sandbox-id")["status"] == "NOT_FOUND"


def test_text_search_names_follow_the_query(sandbox, http):
    body = _get(http, sandbox, "textsearch", key="k", query="animal shelter")

    assert body["status"] == "OK" and len(body["results"]) == 3
    assert all("Animal Shelter" in place["name"] and "formatted_address" in place for place in body["results"])
    assert body == _get(http, sandbox, "textsearch", key="k", query="animal shelter")


@pytest.mark.parametrize("operation, params", [
    ("nearbysearch", {"location": LOCATION, "radius": 100}),
    ("textsearch", {"query": "x"}),
    ("details", {"place_id": "sbx_x"}),
])
def test_missing_key_is_request_denied(sandbox, http, operation, params):
    body = _get(http, sandbox, operation, **params)

    assert body["status"] == "REQUEST_DENIED"
    assert body["error_message"]


@pytest.mark.parametrize("operation, params", [
    ("nearbysearch", {"radius": 100}),
    ("nearbysearch", {"location": LOCATION}),
    ("nearbysearch", {"location": "north-ish", "radius": 100}),
    ("textsearch", {}),
    ("details", {}),
])
def test_missing_required_parameters_are_invalid_request(sandbox, http, operation, params):
    assert _get(http, sandbox, operation, key="k", **params)["status"] == "INVALID_REQUEST"
