"""Fake WeatherAPI, Google Places and chat-completions answers, registered with `responses`.

The markdown the fake model returns is written for these tests (it follows the section/field layout the
markdown_to_json parser reads) and deliberately shares no text with the client's prompt files.
"""
from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import responses

from tests.support import UPSTREAM

WEATHER_URL = UPSTREAM["WEATHERAPI_BASE_URL"] + "/current.json"
PLACES_URL = UPSTREAM["GOOGLE_PLACES_BASE_URL"] + "/nearbysearch/json"
CHAT_URL = UPSTREAM["OPENROUTER_BASE_URL"] + "/chat/completions"

PLACES = {
    "hospital": [{"name": "Riverside General Hospital", "vicinity": "12 River Rd", "place_id": "h1"}],
    "police": [{"name": "Central Precinct", "vicinity": "400 Main St", "place_id": "p1"}],
    "fire_station": [{"name": "Engine Company 7", "vicinity": "7 Oak Ave", "place_id": "f1"}],
}

CONTACTS_MARKDOWN = """Here is the plan.

## Emergency Contacts Analysis

### Riverside General Hospital
**Phone**: +1-555-010-0001
**Address**: 12 River Rd, Springfield
**Category**: medical
**Priority**: critical
**Fit Score**: 96
**Reasoning**: Closest full-service emergency department.
**Relevant Scenarios**: natural-disaster, pandemic
**24/7 Available**: yes

### Central Precinct
**Phone**: +1-555-010-0002
**Category**: government
**Priority**: important
**Fit Score**: 85
**Reasoning**: Handles evacuation traffic and security.
**Relevant Scenarios**: natural-disaster
**24/7 Available**: yes

## Meeting Locations

### Primary Meeting Location: Lincoln Park Pavilion
**Address**: 1 Park Loop, Springfield
**Description**: Covered pavilion on high ground.
**Reasoning**: Open space away from buildings, easy to find.
**Practical Details**: Free parking lot, wheelchair accessible paths
**Suitable For**: natural-disaster, pandemic
"""


def weather_body(q: str) -> dict:
    lat, lng = (float(part) for part in q.split(","))
    return {"location": {"name": "Springfield", "lat": lat, "lon": lng},
            "current": {"temp_c": 21.0, "condition": {"text": "Partly cloudy"}}}


def chat_body(content: str, *, prompt_tokens: int = 1200, completion_tokens: int = 300) -> dict:
    return {"id": "gen-test-1", "model": "anthropic/claude-3.5-sonnet",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def query(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}


def register(rsps: responses.RequestsMock, *, chat_content: str = CONTACTS_MARKDOWN,
             places_status: Callable[[str], int] = lambda place_type: 200) -> None:
    """Answer all three upstreams; ``places_status(type)`` lets a test fail some Places searches."""
    rsps.add_callback(responses.GET, WEATHER_URL,
                      callback=lambda req: (200, {}, json.dumps(weather_body(query(req)["q"]))))

    def places(req: Any) -> tuple[int, dict, str]:
        place_type = query(req).get("type", "")
        status = places_status(place_type)
        if status != 200:
            return status, {}, json.dumps({"error": "upstream broke"})
        return 200, {}, json.dumps({"results": PLACES.get(place_type, []), "status": "OK"})

    rsps.add_callback(responses.GET, PLACES_URL, callback=places)
    rsps.add_callback(responses.POST, CHAT_URL,
                      callback=lambda req: (200, {}, json.dumps(chat_body(chat_content))))


def calls_to(rsps: responses.RequestsMock, url: str) -> list[Any]:
    return [call.request for call in rsps.calls if call.request.url.split("?")[0] == url]


EMERGENCY_INPUT = {
    "lat": 39.7817, "lng": -89.6501, "city": "Springfield", "state": "IL", "country": "USA",
    "scenarios": ["natural-disaster", "pandemic"], "family_size": 4, "duration": "72 hours",
    "user_tier": "PRO", "static_contacts": "911 - Emergency services",
}
