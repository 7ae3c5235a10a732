"""The old service's real emergency_contacts workflow and prompts, read unmodified from ../shared, run through
the new engine with mocked upstreams: the requests each upstream receives and the parsed result."""
from __future__ import annotations

import json

import pytest
import responses

from tests.engine.fake_upstreams import (CHAT_URL, EMERGENCY_INPUT, PLACES_URL, WEATHER_URL, calls_to, query, register)

pytestmark = pytest.mark.usefixtures("original_fixture")


@pytest.mark.parametrize("execution", ["sequential", "dependencies"])
def test_emergency_contacts_runs_unmodified(make_engine, original_fixture, execution):
    engine = make_engine(original_fixture)
    with responses.RequestsMock() as rsps:
        register(rsps)
        result = engine.run("emergency_contacts", EMERGENCY_INPUT, execution=execution)

        weather = calls_to(rsps, WEATHER_URL)
        places = calls_to(rsps, PLACES_URL)
        chats = calls_to(rsps, CHAT_URL)

    assert result["success"], result["metadata"].get("error")
    assert len(weather) == 1
    assert query(weather[0])["q"] == "39.7817,-89.6501"
    assert query(weather[0])["key"] == "weather-test-key-0123456789"
    assert query(weather[0])["aqi"] == "no"

    searches = sorted((query(r)["type"], query(r).get("keyword"), query(r)["radius"], query(r)["location"])
                      for r in places)
    assert searches == [("fire_station", None, "8000", "39.7817,-89.6501"),
                        ("hospital", "emergency", "8000", "39.7817,-89.6501"),
                        ("police", None, "8000", "39.7817,-89.6501")]

    assert len(chats) == 1
    body = json.loads(chats[0].body)
    assert body["model"] == "anthropic/claude-3.5-sonnet"
    assert body["temperature"] == 0.7 and body["max_tokens"] == 4000
    assert "top_p" not in body
    assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
    prompt = body["messages"][0]["content"]
    assert "{{include:" not in prompt
    assert "You MUST follow this exact markdown structure" in prompt  # from output-format.md, included
    assert "${" not in prompt
    assert "Springfield, IL, USA" in prompt
    assert '["natural-disaster", "pandemic"]' in prompt
    assert "Riverside General Hospital" in prompt and "Engine Company 7" in prompt
    assert chats[0].headers["Authorization"] == "Bearer sk-or-test-0123456789abcdef"
    assert chats[0].headers["HTTP-Referer"] == "https://beprepared.ai"
    assert chats[0].headers["X-Title"] == "BePrepared.ai"

    output = result["output"]
    assert list(output) == ["contacts", "meeting_locations"]
    assert [c["name"] for c in output["contacts"]] == ["Riverside General Hospital", "Central Precinct"]
    first = output["contacts"][0]
    assert list(first) == ["name", "phone", "address", "website", "category", "priority", "fit_score",
                           "reasoning", "relevant_scenarios", "available_24hr"]
    assert first["phone"] == "+1-555-010-0001" and first["fit_score"] == 96 and first["available_24hr"] is True
    assert output["meeting_locations"][0]["name"] == "Lincoln Park Pavilion"
    assert output["meeting_locations"][0]["priority"] == "primary"

    assert [s["step_id"] for s in result["steps_executed"]] == [
        "fetch_weather", "fetch_hospitals", "fetch_police", "fetch_fire_stations", "format_places_data",
        "generate_contacts", "parse_contacts"]
    meta = result["metadata"]
    assert meta["total_tokens"] == 1500
    assert meta["total_cost_usd"] == pytest.approx((1200 * 3 + 300 * 15) / 1e6)
    assert [c["metadata"]["step_id"] for c in meta["llm_calls"]] == ["generate_contacts"]
    assert meta["execution"] == execution


def test_failing_places_search_continues(make_engine, original_fixture):
    """DECISIONS: step-level `continue` governs external API steps (the old worker aborted the whole job)."""
    engine = make_engine(original_fixture)
    with responses.RequestsMock() as rsps:
        register(rsps, places_status=lambda place_type: 500 if place_type == "hospital" else 200)
        result = engine.run("emergency_contacts", EMERGENCY_INPUT)
        prompt = json.loads(calls_to(rsps, CHAT_URL)[0].body)["messages"][0]["content"]

    assert result["success"]
    hospitals = next(s for s in result["steps_executed"] if s["step_id"] == "fetch_hospitals")
    assert hospitals["success"] is False
    assert hospitals["error"]["category"] == "EXTERNAL_ERROR"
    assert hospitals["error"]["retryable"] is True
    assert hospitals["error"]["step_id"] == "fetch_hospitals"
    assert "Hospitals: null" in prompt
    assert "${steps" not in prompt
    assert result["output"]["contacts"]
