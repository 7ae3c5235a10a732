"""POST /api/v1/workflow/validate and GET /api/v1/workflows."""
from __future__ import annotations

import pytest

from tests.support import REPO


def validate(api, name, input_data=None):
    return api.post("/api/v1/workflow/validate", json={"workflow_name": name, "input_data": input_data or {}})


def test_valid_workflow_reports_estimates(api):
    response = validate(api, "greeting", {"person": "Ann"})
    assert response.status_code == 200
    assert response.get_json() == {
        "valid": True, "workflow_name": "greeting", "errors": None, "warnings": [],
        "estimated_tokens": 2000, "estimated_cost_usd": 0.03, "estimated_duration_seconds": 10}


def test_missing_required_input_is_a_warning_not_an_error(api):
    body = validate(api, "greeting", {}).get_json()
    assert body["valid"] is True
    assert body["warnings"] == ["input 'person' is declared required but was not given"]


def test_unknown_workflow_is_200_with_valid_false(api):
    """12.1 #6: validate answers 200 where submit answers 404."""
    response = validate(api, "nonexistent_workflow")
    assert response.status_code == 200
    assert response.get_json() == {
        "valid": False, "workflow_name": "nonexistent_workflow",
        "errors": ["Workflow 'nonexistent_workflow' not found"], "warnings": [], "estimated_tokens": None, "estimated_cost_usd": None, "estimated_duration_seconds": None}


def test_invalid_definition_lists_its_problems(api):
    body = validate(api, "no_steps").get_json()
    assert body["valid"] is False and body["estimated_tokens"] is None
    assert len(body["errors"]) == 1 and "at least one step" in body["errors"][0]
    assert body["errors"][0].startswith("definitions/no_steps.json: ")


def test_unreadable_definition_reports_the_load_error(api):
    body = validate(api, "garbled").get_json()
    assert body["valid"] is False
    assert body["errors"][0].startswith("Failed to load workflow: Invalid JSON in workflow file 'garbled.json'")


@pytest.mark.parametrize("name, words", [
    ("broken_reference", "references step 'nowhere' which does not exist"),
    ("missing_prompt", "does-not-exist.md"),
])
def test_static_check_problems_make_it_invalid_but_keep_estimates(api, name, words):
    body = validate(api, name).get_json()
    assert body["valid"] is False
    assert any(words in line for line in body["errors"])
    assert body["estimated_tokens"] == 1000 and body["estimated_duration_seconds"] == 5


def test_validate_checks_its_body(api):
    response = api.post("/api/v1/workflow/validate", json={"workflow_name": "../x"})
    assert response.status_code == 422
    locs = [issue["loc"] for issue in response.get_json()["detail"]["errors"]]
    assert locs == [["body", "workflow_name"], ["body", "input_data"]]


def test_emergency_contacts_estimates_match_the_old_service(make_api, original_fixture):
    api = make_api(workflows_dir=str(original_fixture))
    body = validate(api, "emergency_contacts", {"formData": {}}).get_json()
    assert body["valid"] is True and body["workflow_name"] == "emergency_contacts" and body["errors"] is None
    assert (body["estimated_tokens"], body["estimated_cost_usd"], body["estimated_duration_seconds"]) == (
        7000, 0.105, 35)


# ---------------------------------------------------------------------------------------------------- listing

def test_listing_shows_every_definition_with_its_validity(api):
    response = api.get("/api/v1/workflows")
    assert response.status_code == 200
    workflows = {entry["name"]: entry for entry in response.get_json()["workflows"]}
    assert list(workflows) == sorted(workflows)
    assert set(workflows) == {"broken_reference", "garbled", "greeting", "missing_prompt", "no_steps"}
    assert workflows["greeting"] == {"name": "greeting", "version": "1.2.0", "description": "Greets someone",
                                     "steps": 2, "valid": True}
    assert workflows["broken_reference"]["valid"] is False and workflows["broken_reference"]["steps"] == 1
    assert any("nowhere" in line for line in workflows["broken_reference"]["errors"])
    assert workflows["no_steps"]["valid"] is False and workflows["no_steps"]["version"] is None
    assert workflows["garbled"]["errors"][0].startswith("Failed to load workflow: ")


def test_listing_an_empty_directory(make_api, tmp_path):
    api = make_api(workflows_dir=str(tmp_path / "empty"))
    assert api.get("/api/v1/workflows").get_json() == {"workflows": []}


def test_the_repository_workflows_are_listed_and_valid(make_api):
    root = REPO / "workflows"
    names = sorted(p.stem for p in (root / "definitions").glob("*.json")) if root.is_dir() else []
    if not names:
        pytest.skip("the repository's workflows/definitions holds no definitions yet")
    api = make_api(workflows_dir=str(root))
    listed = api.get("/api/v1/workflows").get_json()["workflows"]
    assert [entry["name"] for entry in listed] == names
    invalid = {entry["name"]: entry.get("errors") for entry in listed if not entry["valid"]}
    assert invalid == {}


def test_describe_a_workflow_gives_inputs_steps_and_a_diagram(make_api):
    api = make_api(workflows_dir=str(REPO / "workflows"))
    response = api.get("/api/v1/workflows/trip_safety_briefing")
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "trip_safety_briefing" and body["total_steps"] == 11
    assert body["inputs"][0] == {"name": "lat", "type": "number", "required": True, "default": None,
                                 "description": "Latitude of the destination", "declared": True}
    gather, choose = body["steps"][0], body["steps"][-1]
    assert [c["id"] for c in gather["children"]] == ["weather", "hospitals", "pharmacies", "urgent_care"]
    assert [(c["id"], c["branch"]) for c in choose["children"]][-1] == ("short_briefing", "else")
    assert body["diagram"]["format"] == "mermaid" and "flowchart TD" in body["diagram"]["text"]
    assert body["upstream_calls"]["openrouter"] == {"calls": 2, "max_calls": 6}  # both branches' LLM steps
    dot = api.get("/api/v1/workflows/trip_safety_briefing?format=dot").get_json()["diagram"]
    assert dot["format"] == "dot" and dot["text"].startswith("// trip_safety_briefing")


@pytest.mark.parametrize("path, status, error", [
    ("/api/v1/workflows/nonexistent_workflow", 404, "WorkflowNotFound"),
    ("/api/v1/workflows/no_steps", 400, "WorkflowValidationError"),
    ("/api/v1/workflows/garbled", 500, "WorkflowLoadError"),
    ("/api/v1/workflows/greeting?format=svg", 422, None),
])
def test_describe_answers_like_submit_for_bad_names_and_checks_its_query(api, path, status, error):
    response = api.get(path)
    assert response.status_code == status
    if error:
        assert response.get_json()["detail"]["error"] == error
