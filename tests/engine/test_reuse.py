"""Re-running from a step: reused full records (LLM usage included) instead of executing earlier steps, records
reported as steps finish, and the selection that refuses unknown steps, missing records and changed definitions."""
from __future__ import annotations

import json

import pytest

from llm_service.engine.reuse import (
    RerunRefused,
    first_unfinished_step,
    records_to_reuse,
    step_fingerprints,
)
from llm_service.engine.errors import UpstreamServerError
from tests.engine.fakes import FakeProvider, FakeService, api_step, make_engine, step, write_workflow


def pipeline(final_op: str = "flaky") -> dict:
    return {"name": "pipeline", "version": "1", "steps": [
        step("ask", "llm", {"prompt_text": "Name a city near ${input.x}"}, outputs=["city"]),
        api_step("look", params={"city": "${steps.ask.city}"}),
        step("shape", "transform", {"operation": "template",
                                    "config": {"template": "${steps.ask.content}/${steps.look.data.city}"}}),
        api_step("final", final_op, params={"text": "${steps.shape.output}"}),
    ]}


@pytest.fixture
def setup(tmp_path):
    state = {"fail": True}

    def flaky(params, **_):
        if state["fail"]:
            raise UpstreamServerError("Server error (500): down")
        return {"done": params["text"]}

    service = FakeService("fake", echo=lambda p, **_: dict(p), flaky=flaky)
    provider = FakeProvider("Paris", input_tokens=7, output_tokens=3)
    write_workflow(tmp_path, pipeline())
    engine = make_engine(tmp_path, service, provider=provider)
    return engine, service, provider, state


def test_a_rerun_reuses_the_full_records_and_executes_only_the_rest(setup):
    engine, service, provider, state = setup
    kept: dict = {}
    first = engine.run("pipeline", {"x": 1}, record_sink=lambda step_id, record: kept.update({step_id: record}))
    assert not first["success"] and first["metadata"]["error"]["step_id"] == "final"
    assert set(kept) == {"ask", "look", "shape", "final"}
    assert kept["ask"]["usage"]["total_tokens"] == 10 and kept["ask"]["city"] == "Paris"  # the full record
    workflow = engine.load("pipeline")
    assert first_unfinished_step(workflow, kept) == "final"
    reuse = records_to_reuse(workflow, "final", json.loads(json.dumps(kept)), step_fingerprints(workflow))
    assert set(reuse) == {"ask", "look", "shape"}

    state["fail"] = False
    calls_before, prompts_before = len(service.calls), len(provider.requests)
    again = engine.run("pipeline", {"x": 1}, completed_steps=reuse)
    assert again["success"] and again["output"]["data"] == {"done": "Paris/Paris"}
    assert len(provider.requests) == prompts_before  # no second LLM call
    assert [op for op, _, _ in service.calls[calls_before:]] == ["flaky"]  # only the final step ran
    entries = {e["step_id"]: e for e in again["steps_executed"]}
    assert [s for s, e in entries.items() if e.get("reused")] == ["ask", "look", "shape"]
    assert entries["ask"]["output"]["tokens"] == 10 and entries["ask"]["duration_ms"] == 0
    assert "reused" not in entries["final"]
    assert again["metadata"]["reused_steps"] == ["ask", "look", "shape"]
    assert again["metadata"]["llm_calls"] == [] and again["metadata"]["total_tokens"] == 0  # nothing paid again


def test_records_reach_the_sink_as_each_step_finishes(setup):
    engine, _, _, _ = setup
    seen: list[str] = []
    engine.run("pipeline", {"x": 1}, progress=lambda step_id, *_: seen.append(f"progress:{step_id}"),
               record_sink=lambda step_id, record: seen.append(f"record:{step_id}"))
    assert seen[:4] == ["record:ask", "progress:ask", "record:look", "progress:look"]


def test_the_cli_result_can_carry_the_records_and_fingerprints(setup):
    engine, _, _, _ = setup
    result = engine.run("pipeline", {"x": 1}, include_records=True)
    assert set(result["step_records"]) == {"ask", "look", "shape", "final"}
    assert result["metadata"]["step_fingerprints"] == step_fingerprints(engine.load("pipeline"), engine.prompts)
    assert "step_records" not in engine.run("pipeline", {"x": 1})


def test_selection_refuses_unknown_steps_missing_records_and_changed_definitions(setup, tmp_path):
    engine, _, _, _ = setup
    kept: dict = {}
    engine.run("pipeline", {"x": 1}, record_sink=lambda step_id, record: kept.update({step_id: record}))
    workflow = engine.load("pipeline")
    prints = step_fingerprints(workflow)
    with pytest.raises(RerunRefused) as unknown:
        records_to_reuse(workflow, "nope", kept, prints)
    assert unknown.value.reason == "unknown_step"
    partial = {k: v for k, v in kept.items() if k != "look"}
    with pytest.raises(RerunRefused) as missing:
        records_to_reuse(workflow, "final", partial, prints)
    assert missing.value.reason == "not_recorded" and missing.value.details["missing_steps"] == ["look"]
    assert set(records_to_reuse(workflow, "look", partial, prints)) == {"ask"}

    changed = pipeline()
    changed["steps"][1]["config"]["parameters"] = {"city": "${steps.ask.city}", "country": "FR"}
    write_workflow(tmp_path, changed)
    edited = engine.load("pipeline")
    with pytest.raises(RerunRefused) as definition:
        records_to_reuse(edited, "final", kept, prints)
    assert definition.value.reason == "definition_changed"
    assert definition.value.details["changed_steps"] == ["look"]
    assert set(records_to_reuse(edited, "look", kept, prints)) == {"ask"}  # a changed later step is fine


def test_steps_inside_a_container_rerun_around_the_chosen_step(tmp_path):
    write_workflow(tmp_path, {"name": "fan", "steps": [
        api_step("first"),
        step("both", "parallel", {"steps": [api_step("left"), api_step("right")]}),
    ]})
    service = FakeService("fake", echo=lambda p, **_: dict(p))
    engine = make_engine(tmp_path, service)
    kept: dict = {}
    engine.run("fan", {}, record_sink=lambda step_id, record: kept.update({step_id: record}))
    workflow = engine.load("fan")
    reuse = records_to_reuse(workflow, "right", kept, step_fingerprints(workflow))
    assert set(reuse) == {"first", "left"}  # not "both", which contains the chosen step
    service.calls.clear()
    result = engine.run("fan", {}, completed_steps=reuse)
    assert result["success"] and len(service.calls) == 1
    assert result["metadata"]["reused_steps"] == ["first", "left"]


def test_an_edited_prompt_file_counts_as_a_changed_step(tmp_path):
    write_workflow(tmp_path, {"name": "prompted", "steps": [
        step("ask", "llm", {"prompt_template": "ask.md"}), api_step("after")]}, prompts={"ask.md": "Version one"})
    engine = make_engine(tmp_path, FakeService("fake", echo=lambda p, **_: dict(p)))
    workflow = engine.load("prompted")
    before = step_fingerprints(workflow, engine.prompts)
    kept = engine.run("prompted", {}, include_records=True)["step_records"]
    assert set(records_to_reuse(workflow, "after", kept, before, engine.prompts)) == {"ask"}
    (tmp_path / "prompts" / "ask.md").write_text("Version two, longer")
    with pytest.raises(RerunRefused) as changed:
        records_to_reuse(workflow, "after", kept, before, engine.prompts)
    assert changed.value.details["changed_steps"] == ["ask"]
