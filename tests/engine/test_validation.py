"""Static checks of the LLM step's structured output and model fallback fields."""
from __future__ import annotations

from llm_service.engine.definitions import parse_workflow
from llm_service.engine.prompts import PromptLoader
from llm_service.engine.validation import check_workflow
from tests.engine.fakes import Registry, step

CLOSED = {"type": "json_schema", "json_schema": {"name": "r", "schema": {
    "type": "object", "additionalProperties": False, "properties": {"risk": {"type": "integer"}}}}}


def report_for(*steps, tmp_path):
    workflow = parse_workflow({"name": "w", "steps": list(steps)}, source="definitions/w.json")
    return check_workflow(workflow, prompts=PromptLoader(tmp_path), services=Registry())


def test_references_to_fields_a_closed_schema_cannot_have_are_problems(tmp_path):
    report = report_for(
        step("rate", "llm", {"prompt_text": "p", "model": "openai/gpt-4o", "response_format": CLOSED}),
        step("use", "transform", {"operation": "template", "config": {"template": "${a} ${b}", "variables": {
            "a": "${steps.rate.output.risk}", "b": "${steps.rate.output.riks}"}}}), tmp_path=tmp_path)
    assert report.problems == [
        "definitions/w.json: step 'use' (steps[1]): ${steps.rate.output.riks}: the structured output of step "
        "'rate' has no field 'riks' (its schema allows: risk)"]


def test_unpriced_or_repeated_models_and_stray_format_retries_are_warnings(tmp_path):
    report = report_for(step("g", "llm", {"prompt_text": "p", "model": "openai/gpt-4o",
                                          "models": ["openai/gpt-4o", "someone/new-model"],
                                          "max_format_retries": 2}), tmp_path=tmp_path)
    assert report.problems == []
    text = "\n".join(report.warnings)
    assert "model 'someone/new-model' is not in the price table" in text
    assert "'models' lists a model more than once" in text
    assert "max_format_retries has no effect without response_format" in text
