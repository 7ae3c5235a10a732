"""The workflows bundled in ``workflows/``: each validates cleanly and runs end to end with its example input
against the sandbox upstream, and produces the output shape its consumers read."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llm_service import cli
from llm_service.config import Config
from llm_service.engine.definitions import DefinitionLoader
from llm_service.engine.prompts import PromptLoader
from llm_service.engine.validation import check_workflow
from llm_service.http import build_http_client
from llm_service.integrations import build_providers, build_services
from tests.support import REPO, TEST_KEYS

WORKFLOWS = REPO / "workflows"
BUNDLED = ("emergency_contacts", "trip_safety_briefing", "hello", "transform_chain", "household_readiness")
CONTACT_KEYS = ["name", "phone", "address", "website", "category", "priority", "fit_score", "reasoning",
                "relevant_scenarios", "available_24hr"]
MEETING_KEYS = ["name", "address", "description", "reasoning", "priority", "suitable_for", "has_parking",
                "is_accessible"]
EMERGENCY_STEPS = ["fetch_weather", "fetch_hospitals", "fetch_police", "fetch_fire_stations", "format_places_data",
                   "format_weather", "generate_contacts", "parse_contacts"]


def example(name: str, **changes: Any) -> dict:
    data = json.loads(Path(WORKFLOWS, "examples", f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def entries(result: dict) -> dict[str, dict]:
    return {entry["step_id"]: entry for entry in result["steps_executed"]}


def chat_prompts(upstream: Any) -> list[str]:
    """The user messages the sandbox's chat endpoint received, in order."""
    return ["\n".join(m["content"] for m in request["json"]["messages"] if m["role"] == "user")
            for request in upstream.requests() if request["path"].endswith("/chat/completions")]


# --------------------------------------------------------------------------------------------------- validation


def test_every_bundled_workflow_has_a_definition_and_an_example():
    definitions = {p.stem for p in (WORKFLOWS / "definitions").glob("*.json")}
    examples = {p.stem for p in (WORKFLOWS / "examples").glob("*.json")}
    assert set(BUNDLED) <= definitions
    assert definitions <= examples, f"definitions without an example input: {sorted(definitions - examples)}"


@pytest.mark.parametrize("name", BUNDLED)
def test_validates_without_problems_or_warnings(name):
    config = Config.from_env({**TEST_KEYS, "WORKFLOWS_DIR": str(WORKFLOWS)})
    http = build_http_client(config)
    try:
        services, providers = build_services(config, http), build_providers(config, http)
        known = {service: set(services.get(service).operations) for service in services.names()}
        workflow = DefinitionLoader(WORKFLOWS, services=known).load(name)
        report = check_workflow(workflow, prompts=PromptLoader(WORKFLOWS / "prompts"), services=services,
                                providers=providers, max_steps=config.workflow_max_steps)
    finally:
        http.close()
    assert workflow.name == name
    assert report.problems == []
    assert report.warnings == []


def test_cli_validate_accepts_all_bundled_workflows(capsys):
    code = cli.main(["validate", "--workflows-dir", str(WORKFLOWS), *BUNDLED])
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.out + captured.err
    assert "warning:" not in captured.err
    assert all(f"{name}: ok" in captured.err for name in BUNDLED)


def test_emergency_contacts_prompts_include_a_shared_file():
    text = (WORKFLOWS / "prompts" / "emergency-contacts" / "request.md").read_text(encoding="utf-8")
    assert "{{include:../shared/" in text
    expanded = PromptLoader(WORKFLOWS / "prompts").load("emergency-contacts/request.md")
    assert "{{include:" not in expanded
    for heading in ("## Emergency Contacts Analysis", "## Meeting Locations", "### Primary Meeting Location: "):
        assert heading in expanded
    for field in ("Phone", "Address", "Website", "Category", "Priority", "Fit Score", "Reasoning",
                  "Relevant Scenarios", "24/7 Available", "Description", "Practical Details", "Suitable For"):
        assert f"**{field}**: " in expanded


# ----------------------------------------------------------------------------------------------- every example


@pytest.mark.parametrize("name", BUNDLED)
def test_example_runs_cleanly_against_the_sandbox(make_engine, name):
    result = make_engine().run(name, example(name))
    assert result["success"], result["metadata"].get("error")
    assert result["workflow_name"] == name
    assert result["output"] is not None
    assert "warnings" not in result["metadata"], result["metadata"].get("warnings")
    assert all(entry["success"] or entry.get("skipped") for entry in result["steps_executed"])


# ------------------------------------------------------------------------------------------- emergency_contacts


def test_emergency_contacts_output_shape_and_data_flow(make_engine, upstream):
    result = make_engine().run("emergency_contacts", example("emergency_contacts"))

    assert result["success"], result["metadata"].get("error")
    output = result["output"]
    assert list(output) == ["contacts", "meeting_locations", "llm_usage"]
    assert output["contacts"] and output["meeting_locations"]
    assert all(list(contact) == CONTACT_KEYS for contact in output["contacts"])
    assert all(list(place) == MEETING_KEYS for place in output["meeting_locations"])
    assert output["meeting_locations"][0]["priority"] == "primary"
    assert output["llm_usage"]["model"] == "anthropic/claude-3.5-sonnet"
    assert output["llm_usage"]["total_tokens"] > 0

    steps = entries(result)
    assert [entry["step_id"] for entry in result["steps_executed"]] == EMERGENCY_STEPS
    hospitals = [place["name"] for place in steps["fetch_hospitals"]["output"]["data"]["results"]]
    assert set(hospitals) & {contact["name"] for contact in output["contacts"]}

    [prompt] = chat_prompts(upstream)
    weather = steps["fetch_weather"]["output"]["data"]
    assert f": {weather['current']['condition']['text']}. Temperature {weather['current']['temp_c']} °C" in prompt
    assert "${" not in prompt and "{{include:" not in prompt
    assert '["natural-disaster", "pandemic"]' in prompt
    assert "Dr. Alvarez (family doctor)" in prompt
    assert hospitals[0] in prompt


def _without_durations(value: Any) -> Any:
    value = copy.deepcopy(value)
    value["llm_usage"].pop("duration_ms")
    return value


def test_emergency_contacts_same_output_sequential_and_dependencies(make_engine):
    results = {mode: make_engine().run("emergency_contacts", example("emergency_contacts"), execution=mode)
               for mode in ("sequential", "dependencies")}

    sequential, dependencies = results["sequential"], results["dependencies"]
    assert sequential["success"] and dependencies["success"]
    assert _without_durations(sequential["output"]) == _without_durations(dependencies["output"])
    assert [(e["step_id"], e["success"]) for e in sequential["steps_executed"]] == \
           [(e["step_id"], e["success"]) for e in dependencies["steps_executed"]]
    assert sequential["metadata"]["execution"] == "sequential"
    assert dependencies["metadata"]["execution"] == "dependencies"


def test_emergency_contacts_declares_dependencies_execution(make_engine):
    result = make_engine().run("emergency_contacts", example("emergency_contacts"))
    assert result["metadata"]["execution"] == "dependencies"


def test_emergency_contacts_continues_when_every_place_search_fails(make_engine, upstream):
    upstream.add_fault("/places/nearbysearch", "status", status=500, count=-1)

    result = make_engine().run("emergency_contacts", example("emergency_contacts"))

    assert result["success"], result["metadata"].get("error")
    steps = entries(result)
    for step_id in ("fetch_hospitals", "fetch_police", "fetch_fire_stations"):
        assert steps[step_id]["success"] is False
        assert steps[step_id]["error"]["category"] == "EXTERNAL_ERROR"
    assert steps["format_places_data"]["output"] == "Hospitals: null\nPolice stations: null\nFire stations: null"
    assert [c["name"] for c in result["output"]["contacts"]][:2] == ["Emergency Services (911)",
                                                                    "Poison Control Center"]
    assert result["output"]["meeting_locations"]


def test_emergency_contacts_retries_a_flaky_weather_call(make_engine, upstream):
    upstream.add_fault("/weatherapi/v1/current.json", "status", status=503, count=1)

    result = make_engine().run("emergency_contacts", example("emergency_contacts"))

    assert result["success"], result["metadata"].get("error")
    assert entries(result)["fetch_weather"]["attempts"] == 2


@pytest.mark.parametrize("execution", ["sequential", "dependencies"])
def test_emergency_contacts_fails_when_weather_stays_down(make_engine, upstream, execution):
    upstream.add_fault("/weatherapi/v1/current.json", "status", status=503, count=-1)

    result = make_engine().run("emergency_contacts", example("emergency_contacts"), execution=execution)

    assert result["success"] is False and result["output"] is None
    error = result["metadata"]["error"]
    assert error["step_id"] == "fetch_weather" and error["category"] == "EXTERNAL_ERROR"
    assert [e["step_id"] for e in result["steps_executed"]] == ["fetch_weather"]
    assert result["steps_executed"][0]["attempts"] == 3  # one call plus retry_count 2
    assert chat_prompts(upstream) == []


# ----------------------------------------------------------------------------------------- trip_safety_briefing


def test_trip_briefing_pro_takes_the_detailed_branch(make_engine, upstream):
    result = make_engine().run("trip_safety_briefing", example("trip_safety_briefing", user_tier="pro"))

    assert result["success"], result["metadata"].get("error")
    output = result["output"]
    assert output["detailed"] is True
    assert isinstance(output["detailed_briefing"], str) and output["detailed_briefing"]
    assert output["sections"]["summary"]  # the sandbox answers with a "## Summary" section
    assert output["short_briefing"] is None
    assert output["llm_usage"]["short"] is None
    assert output["llm_usage"]["detailed"]["model"] == "anthropic/claude-3.5-sonnet"
    assert len(output["nearby"]["hospitals"]) == len(output["nearby"]["hospital_addresses"]) > 0
    assert set(output["weather"]) >= {"condition", "temp_c", "local_time"}

    steps = entries(result)
    assert steps["choose_briefing"]["output"] == {"condition": True, "branch": "then"}
    assert steps["short_briefing"]["skipped"] is True and steps["short_briefing"]["success"] is False
    [prompt] = chat_prompts(upstream)
    assert "## Checklist" in prompt and "Lisbon, Portugal" in prompt
    assert output["weather"]["condition"] in prompt
    assert "${" not in prompt and "{{include:" not in prompt


def test_trip_briefing_free_takes_the_short_branch(make_engine, upstream):
    result = make_engine().run("trip_safety_briefing", example("trip_safety_briefing", user_tier="free"))

    assert result["success"], result["metadata"].get("error")
    output = result["output"]
    assert output["detailed"] is False
    assert output["detailed_briefing"] is None and output["sections"] is None
    assert isinstance(output["short_briefing"], str) and output["short_briefing"]
    assert output["llm_usage"] == {"detailed": None, "short": output["llm_usage"]["short"]}
    assert output["llm_usage"]["short"]["model"] == "openai/gpt-4o-mini"

    steps = entries(result)
    assert steps["choose_briefing"]["output"] == {"condition": False, "branch": "else"}
    assert steps["detailed_briefing"]["skipped"] is True
    assert steps["briefing_sections"]["skipped"] is True
    [prompt] = chat_prompts(upstream)
    assert "No more than 150 words" in prompt


def test_trip_briefing_without_user_tier_defaults_to_short(make_engine):
    data = example("trip_safety_briefing")
    del data["user_tier"]
    result = make_engine().run("trip_safety_briefing", data)
    assert result["success"]
    assert result["output"]["detailed"] is False


def test_trip_briefing_pro_without_medical_places_gets_the_short_note(make_engine, upstream):
    upstream.add_fault("/places/nearbysearch", "status", status=500, count=-1)

    result = make_engine().run("trip_safety_briefing", example("trip_safety_briefing", user_tier="pro"))

    assert result["success"], result["metadata"].get("error")
    steps = entries(result)
    assert steps["hospitals"]["success"] is False and steps["pharmacies"]["success"] is False
    assert steps["urgent_care"]["success"] is True
    nearby = result["output"]["nearby"]
    assert nearby["hospitals"] is None and nearby["pharmacies"] is None and nearby["urgent_care"]
    assert result["output"]["detailed"] is False and result["output"]["short_briefing"]


def test_trip_briefing_retries_a_flaky_weather_call(make_engine, upstream):
    upstream.add_fault("/weatherapi/v1/current.json", "status", status=502, count=2)

    result = make_engine().run("trip_safety_briefing", example("trip_safety_briefing"))

    assert result["success"], result["metadata"].get("error")
    assert entries(result)["weather"]["attempts"] == 3


# --------------------------------------------------------------------------------------- hello, transform_chain


def test_hello_uses_the_default_name(make_engine, upstream):
    result = make_engine().run("hello", {})
    assert result["success"]
    assert result["output"]["greeting"]
    assert result["output"]["llm_usage"]["model"] == "openai/gpt-4o-mini"
    assert chat_prompts(upstream) == ["Greet world in one short, friendly sentence."]


EXPECTED_CHAIN = {
    "household": "Rivera household",
    "categories": "water, medical, food, power",
    "category_codes": ["WATER", "MEDICAL", "FOOD", "POWER"],
    "use_first": "Drinking water",
    "checklist": "\n".join([
        "- Drinking water: 24 litres, use by 2026-03-01 (Rivera household)",
        "- First aid kit: 1 kits, use by 2026-09-30 (Rivera household)",
        "- Rice: 5 kg, use by 2026-12-31 (Rivera household)",
        "- Canned beans: 12 cans, use by 2027-01-15 (Rivera household)",
        "- Water purification tablets: 50 tablets, use by 2028-04-01 (Rivera household)",
        "- Flashlight: 2 pieces, use by 2031-06-30 (Rivera household)",
    ]),
    "profile": {
        "units": "metric",
        "reminders": {"email": True, "sms": False},
        "household": "Rivera household",
        "members": 4,
        "city": "Springfield",
        "first_listed": "Drinking water",
        "all_items": ["Drinking water", "Canned beans", "AA batteries", "First aid kit", "Rice", "Flashlight",
                      "Water purification tablets"],
        "prescriptions": ["RX-20931", "RX-44120"],
        "dates": ["2026-03-01", "2026-02-01"],
    },
}


@pytest.mark.parametrize("execution", ["sequential", "dependencies"])
def test_transform_chain_output(make_engine, upstream, execution):
    result = make_engine().run("transform_chain", example("transform_chain"), execution=execution)
    assert result["success"], result["metadata"].get("error")
    assert result["output"] == EXPECTED_CHAIN
    assert len(result["steps_executed"]) == 11
    assert upstream.requests() == []  # pure transforms: nothing leaves the process


# --------------------------------------------------------------------------------------- household_readiness

READINESS_KEYS = ["headline", "score", "level", "gaps", "next_steps", "llm_usage"]


def test_household_readiness_sends_its_schema_and_outputs_the_parsed_answer(make_engine, upstream):
    result = make_engine().run("household_readiness", example("household_readiness"))
    assert result["success"], result["metadata"].get("error")
    output = result["output"]
    assert list(output) == READINESS_KEYS
    assert output["level"] in ("low", "fair", "good") and 0 <= output["score"] <= 100
    assert output["headline"] == f"Readiness: {output['level']} ({output['score']}/100)"
    (request,) = [r for r in upstream.requests() if r["path"].endswith("/chat/completions")]
    assert request["json"]["response_format"]["json_schema"]["name"] == "readiness"
    assert "AA batteries" in request["json"]["messages"][0]["content"]


def test_household_readiness_falls_back_when_the_first_model_is_down(make_engine, upstream):
    upstream.add_fault("/openai/v1/chat/completions", "status", status=503, model="openai/gpt-4o-mini", count=-1)
    result = make_engine().run("household_readiness", example("household_readiness"))
    assert result["success"], result["metadata"].get("error")
    assert result["output"]["llm_usage"]["model"] == "anthropic/claude-3-haiku"
    assert result["metadata"]["llm_calls"][0]["model"] == "anthropic/claude-3-haiku"
    models = [r["json"]["model"] for r in upstream.requests() if r["path"].endswith("/chat/completions")]
    assert models == ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]
