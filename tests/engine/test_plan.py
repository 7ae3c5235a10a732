"""The static plan behind dry-run, diagram and the workflow detail endpoint."""
from __future__ import annotations

import pytest

from llm_service.engine.definitions import DefinitionLoader, parse_workflow
from llm_service.engine.plan import build_plan
from llm_service.engine.prompts import PromptLoader
from tests.engine.fakes import step
from tests.support import REPO

WORKFLOWS = REPO / "workflows"


def bundled(name):
    return DefinitionLoader(WORKFLOWS).load(name)


def test_plan_tree_keeps_execution_order_and_nests_branches():
    plan = build_plan(bundled("trip_safety_briefing"))
    assert [p.step.id for p in plan.steps] == ["gather", "weather_now", "nearby", "choose_briefing"]
    gather, choose = plan.steps[0], plan.steps[3]
    assert [(c.step.id, c.branch) for c in gather.children] == [
        ("weather", "parallel"), ("hospitals", "parallel"), ("pharmacies", "parallel"), ("urgent_care", "parallel")]
    assert [(c.step.id, c.branch) for c in choose.children] == [
        ("detailed_briefing", "then"), ("briefing_sections", "then"), ("short_briefing", "else")]
    assert [p.step.id for p in plan.walk()] == [s.id for s in plan.workflow.walk()]
    assert plan.steps[2].reads_all_earlier and plan.waves is None


def test_dependencies_mode_has_waves_and_references_name_the_steps_they_need():
    plan = build_plan(bundled("emergency_contacts"))
    assert plan.waves == [["fetch_weather", "fetch_hospitals", "fetch_police", "fetch_fire_stations"],
                          ["format_places_data", "format_weather"], ["generate_contacts"], ["parse_contacts"]]
    by_id = {p.step.id: p for p in plan.walk()}
    assert by_id["format_weather"].needs == ["fetch_weather"]
    assert "steps.fetch_weather.data" in by_id["fetch_weather"].provides
    assert "steps.generate_contacts.markdown" in by_id["generate_contacts"].provides  # an `outputs` alias
    assert plan.upstream_calls["google_places"] == {"calls": 3, "max_calls": 3}
    assert plan.upstream_calls["weatherapi"] == {"calls": 1, "max_calls": 3}  # retry_count 2


def test_structured_output_step_provides_its_schema_fields_and_counts_fallbacks_and_format_retries():
    workflow = parse_workflow({"name": "s", "steps": [step("rate", "llm", {
        "prompt_text": "Rate ${city}", "variables": {"city": "${input.city}"}, "max_tokens": 100,
        "model": "openai/gpt-4o", "models": ["openai/gpt-4o-mini", "unknown/model"], "max_format_retries": 1,
        "response_format": {"type": "json_schema", "json_schema": {"schema": {
            "type": "object", "properties": {"risk": {"type": "integer"}, "why": {"type": "string"}}}}}})]})
    plan = build_plan(workflow, prompts=PromptLoader(WORKFLOWS / "prompts"), input_data={"city": "Oslo"})
    rate = plan.steps[0]
    assert {"steps.rate.output.risk", "steps.rate.output.why", "steps.rate.content"} <= set(rate.provides)
    assert plan.upstream_calls == {"llm": {"calls": 1, "max_calls": 6}}  # no provider registry given
    assert rate.rendered["messages"] == [{"role": "user", "content": "Rate Oslo"}]
    estimate = rate.estimate
    assert estimate["prompt_tokens"] == 3 and estimate["output_tokens"] == 100  # ceil(9 chars / 4)
    assert estimate["cost_usd"] == pytest.approx((3 * 2.5 + 100 * 10) / 1e6, abs=1e-6)
    # both format attempts at the dearest priced candidate; the second also resends the first answer
    assert estimate["max_cost_usd"] == pytest.approx(((3 + 103) * 2.5 + 200 * 10) / 1e6, abs=2e-6)


def test_input_renders_parameters_and_prompts_with_secrets_redacted_and_step_results_left_as_references():
    workflow = parse_workflow({"name": "x", "inputs": [{"name": "tier", "default": "free"}], "steps": [
        step("look", "external_api", {"service": "s", "method": "m",
                                      "parameters": {"q": "${input.city}", "token": "${input.api_token}"}}),
        step("say", "llm", {"prompt_text": "City ${c} (${t}) key ${k}: ${prior}",
                            "variables": {"c": "${input.city}", "t": "${input.tier}", "k": "${input.api_token}",
                                          "prior": "${steps.look.data}"}})]})
    plan = build_plan(workflow, prompts=PromptLoader(WORKFLOWS / "prompts"),
                      input_data={"city": "Oslo", "api_token": "tok-very-secret-1"})
    look, say = plan.steps
    assert look.rendered == {"parameters": {"q": "Oslo", "token": "[REDACTED]"}}
    assert say.rendered["messages"][0]["content"] == "City Oslo (free) key [REDACTED]: ${steps.look.data}"
    assert "tok-very-secret-1" not in str(plan.to_dict())


def test_original_workflow_plans_from_its_own_prompts(original_fixture):
    workflow = DefinitionLoader(original_fixture).load("emergency_contacts")
    plan = build_plan(workflow, prompts=PromptLoader(original_fixture / "prompts"))
    llm = [p for p in plan.walk() if p.step.type == "llm"]
    assert llm and all(p.estimate and p.estimate["prompt_tokens"] > 100 and not p.problems for p in llm)
    assert [p.step.id for p in plan.steps][:2] == ["fetch_weather", "fetch_hospitals"]
    assert plan.totals["cost_usd"] > 0


def test_a_condition_on_input_only_is_decided_with_the_input():
    workflow = parse_workflow({"name": "c", "steps": [
        step("pick", "conditional", {"condition": "lower(${input.tier}) == 'pro'", "then": [
            step("t", "transform", {"operation": "template", "config": {"template": "x"}})]}),
        step("late", "conditional", {"condition": "exists(${steps.pick.branch})"})]})
    assert build_plan(workflow, input_data={"tier": "PRO"}).steps[0].rendered == {"condition": True,
                                                                                   "branch": "then"}
    plan = build_plan(workflow, input_data={})
    assert plan.steps[0].rendered == {"condition": False, "branch": "else"} and plan.steps[1].rendered is None
    assert build_plan(workflow).steps[0].rendered is None  # no input: nothing to decide with
