from __future__ import annotations

import json
import re

import pytest

AUTH = {"Authorization": "Bearer sandbox"}


def _chat(http, sandbox, body, headers=AUTH):
    return http.post(f"{sandbox.base_urls()['OPENROUTER_BASE_URL']}/chat/completions", json=body, headers=headers,
                     timeout=5)


def _ask(http, sandbox, prompt, **extra):
    response = _chat(http, sandbox, {"model": "test/model", "messages": [{"role": "user", "content": prompt}],
                                     **extra})
    assert response.status_code == 200
    return response.json()


def _places(http, sandbox, place_type):
    url = f"{sandbox.base_urls()['GOOGLE_PLACES_BASE_URL']}/nearbysearch/json"
    params = {"key": "k", "location": "41.88,-87.63", "radius": 8000, "type": place_type}
    return http.get(url, params=params, timeout=5).json()["results"]


def _emergency_prompt(hospitals, police, fire):
    return ("Recommend emergency contacts. Start your answer with ## Emergency Contacts Analysis.\n"
            f"Hospitals: {json.dumps(hospitals)}\nPolice Stations: {json.dumps(police)}\n"
            f"Fire Stations: {json.dumps(fire)}\n")


def _parse(markdown):
    """The emergency_contacts markdown_to_json reading (engine spec 5.11), reduced to what these tests check."""
    contacts, meetings, section = [], [], None
    for piece in (p.strip() for p in markdown.split("## ")):
        if not piece:
            continue
        header = piece.splitlines()[0]
        if header.startswith("Emergency Contacts Analysis"):
            section = "contacts"
            continue
        if header.startswith("Meeting Locations"):
            section = "meetings"
            continue

        def field(name, text=piece):
            match = re.search(rf"\*\*{re.escape(name)}\*\*:?\s*(.+)", text, re.IGNORECASE)
            return match.group(1).strip() if match else None

        if section == "contacts" and "**Phone**" in piece:
            contacts.append({"name": header, "phone": field("Phone"), "category": field("Category"),
                             "priority": field("Priority"), "fit_score": field("Fit Score"),
                             "reasoning": field("Reasoning"), "scenarios": field("Relevant Scenarios"),
                             "available": field("24/7 Available"), "address": field("Address")})
        elif section == "meetings" and ("**Address**" in piece or "Meeting Location:" in piece):
            meetings.append({"header": header, "address": field("Address"), "reasoning": field("Reasoning"),
                             "description": field("Description"), "details": field("Practical Details"),
                             "suitable": field("Suitable For")})
    return contacts, meetings


def test_response_has_openai_shape_and_usage(sandbox, http):
    body = _ask(http, sandbox, "Summarise the water supply plan.")

    assert body["object"] == "chat.completion" and body["model"] == "test/model"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == -(-len("Summarise the water supply plan.") // 4)
    assert usage["completion_tokens"] == -(-len(choice["message"]["content"]) // 4)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["cost"] > 0


def test_generic_answer_echoes_the_start_of_the_last_user_message(sandbox, http):
    long_message = "Plan a three-day kit for a family of four. " + "x" * 400
    body = _chat(http, sandbox, {"model": "m", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": long_message},
    ]}, AUTH).json()

    content = body["choices"][0]["message"]["content"]
    assert long_message[:200] in content
    assert long_message[:201] not in content
    assert "first question" not in content


def test_same_request_same_response(sandbox, http):
    request = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "temperature": 0.7}

    first, second = _chat(http, sandbox, request).json(), _chat(http, sandbox, request).json()
    other = _chat(http, sandbox, {**request, "temperature": 0.1}).json()

    assert first == second
    assert first["id"] != other["id"]


def test_max_tokens_truncates_with_finish_reason_length(sandbox, http):
    body = _ask(http, sandbox, "Write something", max_tokens=5)

    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5


def test_emergency_prompt_gets_parseable_markdown_built_from_the_places(sandbox, http):
    hospitals, police, fire = (_places(http, sandbox, t) for t in ("hospital", "police", "fire_station"))

    content = _ask(http, sandbox, _emergency_prompt(hospitals, police, fire))["choices"][0]["message"]["content"]

    assert content.startswith("## Emergency Contacts Analysis")
    assert "## Meeting Locations" in content
    contacts, meetings = _parse(content)
    by_name = {c["name"]: c for c in contacts}
    for place in hospitals + police + fire:
        assert place["name"] in by_name
        assert by_name[place["name"]]["address"] == place["vicinity"]
    assert by_name["Emergency Services (911)"]["phone"] == "911"
    assert any("Poison Control" in name for name in by_name)
    for contact in contacts:
        assert all(contact[key] for key in ("phone", "category", "priority", "reasoning", "scenarios"))
        assert contact["fit_score"].isdigit()
        assert contact["available"] in ("Yes", "No")
    assert by_name[hospitals[0]["name"]]["category"] == "medical"
    assert by_name[police[0]["name"]]["category"] == "government"
    assert [m["header"].split(":")[0] for m in meetings] == ["Primary Meeting Location", "Secondary Meeting Location"]
    assert all(m["address"] and m["reasoning"] and m["description"] and m["details"] and m["suitable"]
               for m in meetings)


def test_emergency_prompt_with_python_repr_places_still_finds_names(sandbox, http):
    prompt = ("List emergency contacts. Hospitals: [{'name': \"Saint Mary's Clinic\", 'vicinity': '1 Elm St'}, "
              "{'name': 'Lakeview Hospital', 'vicinity': '9 Shore Rd'}]")

    contacts, _ = _parse(_ask(http, sandbox, prompt)["choices"][0]["message"]["content"])

    names = {c["name"]: c for c in contacts}
    assert names["Saint Mary's Clinic"]["address"] == "1 Elm St"
    assert names["Lakeview Hospital"]["address"] == "9 Shore Rd"


def test_emergency_prompt_without_places_has_universal_contacts_and_meetings(sandbox, http):
    contacts, meetings = _parse(_ask(http, sandbox, "Emergency contact list please; no data available.")
                                ["choices"][0]["message"]["content"])

    assert [c["phone"] for c in contacts] == ["911", "1-800-222-1222"]
    assert len(meetings) == 2


def test_emergency_answer_is_deterministic(sandbox, http):
    prompt = _emergency_prompt(_places(http, sandbox, "hospital"), [], [])

    assert _ask(http, sandbox, prompt) == _ask(http, sandbox, prompt)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
def test_missing_bearer_key_is_401(sandbox, http, headers):
    response = _chat(http, sandbox, {"model": "m", "messages": [{"role": "user", "content": "x"}]}, headers)

    assert response.status_code == 401
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("body", [{"model": "m"}, {"model": "m", "messages": []}, {"model": "m", "messages": "hi"},
                                  {"model": 3, "messages": [{"role": "user", "content": "x"}]}])
def test_invalid_body_is_400(sandbox, http, body):
    response = _chat(http, sandbox, body)

    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_multipart_content_is_read_as_text(sandbox, http):
    body = _chat(http, sandbox, {"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "parts work"}]}]}).json()

    assert "parts work" in body["choices"][0]["message"]["content"]


def test_json_schema_response_format_gets_an_answer_that_fits_the_schema(sandbox, http):
    from jsonschema import validate

    schema = {"type": "object", "required": ["name", "tags", "level", "ok", "kind"],
              "properties": {"name": {"type": "string", "minLength": 3}, "tags": {"type": "array", "minItems": 2,
                                                                                  "items": {"type": "string"}},
                             "level": {"type": "integer", "minimum": 2}, "ok": {"type": "boolean"},
                             "kind": {"enum": ["a", "b"]},
                             "nested": {"type": "object", "properties": {"x": {"type": ["null", "number"]}}}}}
    body = _ask(http, sandbox, "Describe Oslo", response_format={
        "type": "json_schema", "json_schema": {"name": "d", "strict": True, "schema": schema}})
    answer = json.loads(body["choices"][0]["message"]["content"])
    validate(answer, schema)
    assert answer["kind"] == "a" and answer["level"] == 2 and answer["name"] == "sandbox name"
