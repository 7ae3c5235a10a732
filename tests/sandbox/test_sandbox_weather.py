from __future__ import annotations


def _current(http, sandbox, **params):
    return http.get(f"{sandbox.base_urls()['WEATHERAPI_BASE_URL']}/current.json", params=params, timeout=5)


def test_current_has_weatherapi_shape_and_sandbox_labels(sandbox, http):
    response = _current(http, sandbox, key="any", q="40.7128,-74.0060")

    assert response.status_code == 200
    assert response.headers["X-Sandbox"] == "true"
    body = response.json()
    assert body["sandbox"] is True
    location, current = body["location"], body["current"]
    assert {"name", "region", "country", "lat", "lon", "localtime"} <= set(location)
    assert (location["lat"], location["lon"]) == (40.71, -74.01)
    assert {"temp_c", "temp_f", "humidity", "wind_kph", "condition"} <= set(current)
    assert isinstance(current["condition"]["text"], str) and isinstance(current["condition"]["code"], int)
    assert current["temp_f"] == round(current["temp_c"] * 9 / 5 + 32, 1)
    assert "air_quality" not in current


def test_same_q_gives_identical_body_and_different_q_differs(sandbox, http):
    first = _current(http, sandbox, key="a", q="51.5,-0.12").content
    second = _current(http, sandbox, key="b", q="51.5,-0.12").content
    other = _current(http, sandbox, key="a", q="-33.86,151.2").content

    assert first == second
    assert first != other


def test_aqi_yes_adds_air_quality(sandbox, http):
    body = _current(http, sandbox, key="k", q="48.85,2.35", aqi="yes").json()

    assert {"pm2_5", "pm10", "us-epa-index"} <= set(body["current"]["air_quality"])


def test_city_name_is_accepted(sandbox, http):
    body = _current(http, sandbox, key="k", q="springfield").json()

    assert body["location"]["name"] == "Springfield"


def test_missing_or_empty_key_is_401_with_error_object(sandbox, http):
    for params in ({"q": "1,2"}, {"q": "1,2", "key": ""}):
        response = _current(http, sandbox, **params)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 1002


def test_bad_or_missing_q_is_400_with_error_object(sandbox, http):
    missing = _current(http, sandbox, key="k")
    out_of_range = _current(http, sandbox, key="k", q="95,200")
    garbage = _current(http, sandbox, key="k", q="12;;drop")

    assert missing.status_code == 400 and missing.json()["error"]["code"] == 1003
    for response in (out_of_range, garbage):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 1006
