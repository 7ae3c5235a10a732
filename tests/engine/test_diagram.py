"""Workflow diagrams: every step and edge drawn, the same text every time, in both syntaxes."""
from __future__ import annotations

import pytest

from llm_service.engine.definitions import DefinitionLoader
from llm_service.engine.diagram import build_graph, render_diagram
from llm_service.engine.plan import build_plan
from tests.support import REPO

LOADER = DefinitionLoader(REPO / "workflows")


def plan_of(name):
    return build_plan(LOADER.load(name))


@pytest.mark.parametrize("name", LOADER.names())
@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_every_step_is_drawn_and_the_text_is_stable(name, fmt):
    text = render_diagram(plan_of(name), fmt)
    assert text == render_diagram(build_plan(DefinitionLoader(REPO / "workflows").load(name)), fmt)
    for step in LOADER.load(name).walk():
        assert (f'"{step.id}\\n' if fmt == "dot" else f'"{step.id}<br/>') in text


def edges(graph):
    ids = {node: graph.labels[node].split("\n")[0] for node in graph.labels}
    return {(ids[e.source], ids[e.target], e.label) for e in graph.edges}


def test_sequential_graph_has_order_branch_parallel_and_data_edges():
    graph = build_graph(plan_of("trip_safety_briefing"))
    assert edges(graph) == {
        ("input", "gather", None),
        *{("gather", child, None) for child in ("weather", "hospitals", "pharmacies", "urgent_care")},
        *{(child, "weather_now", None) for child in ("weather", "hospitals", "pharmacies", "urgent_care")},
        ("weather_now", "nearby", None), ("nearby", "choose_briefing", None),
        ("choose_briefing", "detailed_briefing", "then"), ("choose_briefing", "short_briefing", "else"),
        ("detailed_briefing", "briefing_sections", None),
        ("briefing_sections", "output", None), ("short_briefing", "output", None),
        ("hospitals", "choose_briefing", "data"), ("pharmacies", "choose_briefing", "data"),
        ("weather_now", "detailed_briefing", "data"), ("nearby", "detailed_briefing", "data"),
        ("weather_now", "short_briefing", "data"), ("nearby", "short_briefing", "data")}
    (group,) = graph.groups
    assert group.label == "parallel: gather" and len(group.nodes) == 4


def test_dependencies_graph_follows_the_waves_and_marks_continue_steps():
    plan = plan_of("emergency_contacts")
    found = edges(build_graph(plan))
    assert ("input", "fetch_police", None) in found and ("fetch_police", "format_places_data", None) in found
    assert ("format_weather", "generate_contacts", None) in found and ("parse_contacts", "output", None) in found
    assert not any(target == "output" and source != "parse_contacts" for source, target, _ in found)
    mermaid = render_diagram(plan, "mermaid")
    assert "class s1_fetch_hospitals,s2_fetch_police,s3_fetch_fire_stations" in mermaid
    assert "s6_generate_contacts([" in mermaid and "llm: anthropic/claude-3.5-sonnet" in mermaid
    dot = render_diagram(plan, "dot")
    assert 'shape=parallelogram, style=dashed' in dot and dot.rstrip().endswith("}")


def test_labels_are_escaped_for_both_syntaxes():
    from llm_service.engine.definitions import parse_workflow

    workflow = parse_workflow({"name": "q", "steps": [{"id": "c", "type": "conditional", "config": {
        "condition": "${input.x} > 1 and ${input.y} == \"a\"", "then": [
            {"id": "t", "type": "transform", "config": {"operation": "template", "config": {"template": "x"}}}]}}]})
    mermaid = render_diagram(build_plan(workflow), "mermaid")
    assert "#gt; 1" in mermaid and "#quot;a#quot;" in mermaid
    assert '-->|else| finish' in mermaid
    assert '\\"a\\"' in render_diagram(build_plan(workflow), "dot")
