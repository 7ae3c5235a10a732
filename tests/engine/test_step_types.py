"""The step type registry: each type is one descriptor, and loading, running, validate, plans and diagrams all ask
it. A type registered only in the registry (as a new ``steps/<type>.py`` would be) works end to end."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from marshmallow import fields, post_load

from llm_service.engine.definitions import WorkflowInvalid, parse_workflow
from llm_service.engine.diagram import render_diagram
from llm_service.engine.plan import build_plan
from llm_service.engine.prompts import PromptLoader
from llm_service.engine.references import find_references
from llm_service.engine.schema_fields import LenientSchema, step_list
from llm_service.engine.scheduling import step_references
from llm_service.engine.steps import STEP_TYPES, Nesting, StepType
from llm_service.engine.steps.base import StepOutcome
from llm_service.engine.validation import check_workflow
from tests.engine.fakes import Registry, make_engine, step, write_workflow


@dataclass
class ShoutSettings:
    text: str
    inner_error_mode: str | None = None


class ShoutSchema(LenientSchema):
    text = fields.String(required=True)

    @post_load
    def _make(self, data, **_):
        return ShoutSettings(text=data["text"])


@dataclass
class GroupSettings:
    label: str
    children: list


class GroupSchema(LenientSchema):
    label = fields.String(load_default="")
    steps = step_list(required=True)

    @post_load
    def _make(self, data, **_):
        return GroupSettings(label=data["label"], children=data["steps"])


def run_shout(run):
    return StepOutcome(result=str(run.resolver().resolve(run.step.settings.text)).upper())


def run_group(run):
    settings = run.step.settings
    run.run_children(settings.children)
    return StepOutcome(result={"label": run.resolver().resolve(settings.label),
                               "ran": [run.state.output_of(child.id) for child in settings.children]})


SHOUT = StepType(name="shout", order=60, schema=ShoutSchema, execute=run_shout,
                 summary=lambda settings: "shouts",
                 references=lambda s: ((path, True) for path in find_references(s.settings.text)),
                 mermaid_shape=("[(", ")]"), dot_shape="cylinder")
GROUP = StepType(name="group", order=70, schema=GroupSchema, execute=run_group,
                 summary=lambda settings: f"{len(settings.children)} grouped",
                 nests=(Nesting(key="steps", attribute="children", branch="group"),))


@pytest.fixture
def new_types(monkeypatch):
    monkeypatch.setitem(STEP_TYPES, "shout", SHOUT)
    monkeypatch.setitem(STEP_TYPES, "group", GROUP)


DEFINITION = {"name": "loud", "steps": [
    step("first", "shout", {"text": "hello ${input.who}"}),
    step("g", "group", {"label": "${steps.first.output}", "steps": [
        step("inner", "shout", {"text": "${steps.first.output} again"})]}),
]}


def test_the_built_in_types_are_listed_in_their_documented_order():
    assert list(STEP_TYPES) == ["llm", "transform", "external_api", "conditional", "parallel"]


def test_a_registered_type_loads_nests_and_runs_its_children_through_the_runner(new_types, tmp_path):
    workflow = parse_workflow(DEFINITION)
    assert [(s.id, s.location) for s in workflow.walk()] == [
        ("first", "steps[0]"), ("g", "steps[1]"), ("inner", "steps[1].config.steps[0]")]
    assert step_references(workflow.steps[1]) == ["steps.first.output"]  # the children's key is not read

    result = make_engine(tmp_path).run(workflow, {"who": "bob"})
    assert result["success"], result["metadata"]
    assert [(e["step_id"], e["step_type"], e["output"]) for e in result["steps_executed"]] == [
        ("first", "shout", "HELLO BOB"), ("g", "group", {"label": "HELLO BOB", "ran": ["HELLO BOB AGAIN"]}),
        ("inner", "shout", "HELLO BOB AGAIN")]


def test_validate_plan_and_diagram_ask_the_descriptor(new_types, tmp_path):
    bad = {"name": "loud", "steps": [step("early", "shout", {"text": "${steps.late.output}"}),
                                     *DEFINITION["steps"][:1], {**DEFINITION["steps"][1], "id": "late"}]}
    report = check_workflow(parse_workflow(bad, source="w.json"), prompts=PromptLoader(tmp_path),
                            services=Registry())
    assert report.problems == ["w.json: step 'early' (steps[0]): ${steps.late.output} references step 'late' "
                               "which runs later"]

    plan = build_plan(parse_workflow(DEFINITION))
    group = plan.steps[1]
    assert (group.summary, [(c.step.id, c.branch) for c in group.children]) == ("1 grouped", [("inner", "group")])
    assert 'first[("first<br/>shout: shouts")]' in render_diagram(plan, "mermaid").replace("s0_", "")
    assert "shape=cylinder" in render_diagram(plan, "dot")


def test_an_unknown_type_is_refused_with_every_registered_type_listed(new_types, tmp_path):
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow({"name": "x", "steps": [step("a", "whisper", {})]})
    assert caught.value.problems == ["<workflow>: step 'a' (steps[0].type): Unknown step type. Allowed: llm, "
                                     "transform, external_api, conditional, parallel, shout, group."]
