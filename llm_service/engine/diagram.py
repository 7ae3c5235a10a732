"""Workflow flowcharts (Mermaid or Graphviz dot), drawn from the plan: deterministic, no LLM involved.

One graph is built from :class:`.plan.Plan` and written in either syntax, so the two always show the same thing:

* a node per step, labelled with its id, type and model / service.operation / transform / condition; its shape
  says the type, a dashed border marks ``continue`` steps (``retry`` ones are labelled);
* solid edges for execution order: step after step in ``sequential`` mode, dependency edges in ``dependencies``
  mode, a conditional's branches labelled ``then`` / ``else``, a parallel step fanning out to its children, which
  are grouped in a box, and joining again after them;
* dotted edges labelled ``data`` for a reference to another step's result that the order edges do not already show.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .plan import Plan, StepPlan
from .steps import STEP_TYPES

FORMATS = ("mermaid", "dot")
START, END = "start", "finish"
LABEL_CHARS = 60


@dataclass
class Edge:
    source: str
    target: str
    label: str | None = None
    data: bool = False


@dataclass
class Group:
    """A parallel step's children, drawn in one box (groups nest like the steps do)."""
    id: str
    label: str
    nodes: list[str]
    subgroups: list["Group"]

    def walk(self) -> list["Group"]:
        return [self, *(g for sub in self.subgroups for g in sub.walk())]


@dataclass
class Graph:
    title: str
    labels: dict[str, str] = field(default_factory=dict)             # node -> label lines joined by "\n"
    kinds: dict[str, str] = field(default_factory=dict)              # node -> step type (or start/finish)
    styles: dict[str, str] = field(default_factory=dict)             # node -> error mode
    groups: list[Group] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add_edge(self, source: str, target: str, label: str | None = None, data: bool = False) -> None:
        if any(e.source == source and e.target == target for e in self.edges):
            return
        self.edges.append(Edge(source, target, label, data))


def render_diagram(plan: Plan, fmt: str = "mermaid") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown diagram format '{fmt}'. Allowed: {', '.join(FORMATS)}")
    graph = build_graph(plan)
    return to_mermaid(graph) if fmt == "mermaid" else to_dot(graph)


def build_graph(plan: Plan) -> Graph:
    graph = Graph(title=f"{plan.workflow.name} {plan.workflow.version}")
    ids = _node_ids(plan)
    graph.labels[START], graph.kinds[START] = "input", "start"
    graph.labels[END], graph.kinds[END] = "output", "finish"
    for step_plan in plan.walk():
        node = ids[step_plan.step.id]
        graph.labels[node] = _label(step_plan)
        graph.kinds[node] = step_plan.step.type
        graph.styles[node] = step_plan.error_mode
    graph.groups = [g for p in plan.steps for g in _nested_groups(p, ids)]
    flow = _Flow(graph, ids)
    if plan.execution == "dependencies":
        flow.dependencies(plan)
    else:
        exits = flow.sequence(plan.steps, [(START, None)])
        flow.join(exits, END)
    for step_plan in plan.walk():
        for target in step_plan.needs:
            if target in ids:
                graph.add_edge(ids[target], ids[step_plan.step.id], "data", data=True)
    return graph


class _Flow:
    """Execution-order edges. ``exits`` are the (node, label) pairs control leaves a piece of the plan by."""

    def __init__(self, graph: Graph, ids: dict[str, str]) -> None:
        self.graph, self.ids = graph, ids

    def join(self, exits: list[tuple[str, str | None]], target: str) -> None:
        for source, label in exits:
            self.graph.add_edge(source, target, label)

    def sequence(self, plans: list[StepPlan], exits: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        for step_plan in plans:
            exits = self.step(step_plan, exits)
        return exits

    def step(self, plan: StepPlan, exits: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        node = self.ids[plan.step.id]
        self.join(exits, node)
        kind = plan.step.kind
        if kind.concurrent:
            joined: list[tuple[str, str | None]] = []
            for child in plan.children:
                joined += self.step(child, [(node, None)])
            return joined or [(node, None)]
        if kind.nests:
            result: list[tuple[str, str | None]] = []
            for branch in (nesting.branch for nesting in kind.nests):
                children = [child for child in plan.children if child.branch == branch]
                if not children:
                    result.append((node, branch))
                    continue
                first, rest = children[0], children[1:]
                self.graph.add_edge(node, self.ids[first.step.id], branch)
                result += self.sequence(rest, self.step(first, []))
            return result
        return [(node, None)]

    def dependencies(self, plan: Plan) -> None:
        by_id = {p.step.id: p for p in plan.steps}
        exits_of: dict[str, list[tuple[str, str | None]]] = {}
        needed: set[str] = set()
        for wave in plan.waves or []:
            for step_id in wave:
                step_plan = by_id[step_id]
                waits = [other for other in _top_level_needs(step_plan, plan) if other in exits_of]
                needed.update(waits)
                entry = [pair for other in waits for pair in exits_of[other]] or [(START, None)]
                exits_of[step_id] = self.step(step_plan, entry)
        for step_plan in plan.steps:
            if step_plan.step.id not in needed:
                self.join(exits_of[step_plan.step.id], END)


def _top_level_needs(step_plan: StepPlan, plan: Plan) -> list[str]:
    from .scheduling import dependencies

    return sorted(dependencies([p.step for p in plan.steps])[step_plan.step.id],
                  key=[p.step.id for p in plan.steps].index)


def _group(plan: StepPlan, ids: dict[str, str]) -> Group:
    return Group(id=f"group_{ids[plan.step.id]}", label=f"{plan.step.type}: {plan.step.id}",
                 nodes=[ids[child.step.id] for child in plan.children],
                 subgroups=[g for child in plan.children for g in _nested_groups(child, ids)])


def _nested_groups(plan: StepPlan, ids: dict[str, str]) -> list[Group]:
    if plan.step.kind.concurrent:
        return [_group(plan, ids)]
    return [g for child in plan.children for g in _nested_groups(child, ids)]


def _node_ids(plan: Plan) -> dict[str, str]:
    """Step id -> a node id both syntaxes accept, unique and stable (definition order)."""
    return {p.step.id: f"s{index}_{re.sub(r'[^A-Za-z0-9_]', '_', p.step.id)}"
            for index, p in enumerate(plan.walk())}


def _label(plan: StepPlan) -> str:
    summary = plan.summary if len(plan.summary) <= LABEL_CHARS else plan.summary[:LABEL_CHARS - 3] + "..."
    lines = [plan.step.id, f"{plan.step.type}: {summary}"]
    if plan.error_mode != "fail":
        lines.append(f"on error: {plan.error_mode}")
    return "\n".join(lines)


# -- Mermaid -----------------------------------------------------------------------------------------------------

_MERMAID_ENDS = {"start": ("((", "))"), "finish": ("((", "))")}  # step nodes: their type's ``mermaid_shape``


def _mermaid_text(text: str) -> str:
    escaped = text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return escaped.replace("\n", "<br/>")


def to_mermaid(graph: Graph) -> str:
    lines = [f"%% {graph.title}: generated by llm-service diagram", "flowchart TD"]
    lines += _nodes(graph, lambda node: _mermaid_node(graph, node),
                    lambda group: [f'subgraph {group.id} ["{_mermaid_text(group.label)}"]'], "end")
    for edge in graph.edges:
        arrow = "-.->" if edge.data else "-->"
        label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
    lines.append("    classDef continue stroke-dasharray: 5 5")
    continuing = [node for node, mode in graph.styles.items() if mode == "continue"]
    if continuing:
        lines.append(f"    class {','.join(continuing)} continue")
    return "\n".join(lines) + "\n"


def _mermaid_node(graph: Graph, node: str) -> str:
    kind = graph.kinds[node]
    opening, closing = _MERMAID_ENDS[kind] if kind in _MERMAID_ENDS else STEP_TYPES[kind].mermaid_shape
    return f'{node}{opening}"{_mermaid_text(graph.labels[node])}"{closing}'


def _nodes(graph: Graph, node_line: Callable[[str], str], group_head: Callable[[Group], list[str]],
           group_end: str) -> list[str]:
    """Node declarations in either syntax: ungrouped nodes first, then each group's box with its nodes inside."""
    grouped = {node for group in graph.groups for inner in group.walk() for node in inner.nodes}
    lines = ["    " + node_line(node) for node in graph.labels if node not in grouped]

    def emit(group: Group, indent: str) -> None:
        lines.extend(indent + head for head in group_head(group))
        lines.extend(indent + "    " + node_line(node) for node in group.nodes)
        for sub in group.subgroups:
            emit(sub, indent + "    ")
        lines.append(indent + group_end)
    for group in graph.groups:
        emit(group, "    ")
    return lines


# -- Graphviz dot ------------------------------------------------------------------------------------------------

_DOT_ENDS = {"start": "circle", "finish": "doublecircle"}  # step nodes: their type's ``dot_shape``


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    lines = [f"// {graph.title}: generated by llm-service diagram", f"digraph {_dot_text(graph.title)} {{",
             "    rankdir=TB;", '    node [fontname="Helvetica", fontsize=11];', '    edge [fontname="Helvetica", '
             'fontsize=9];']
    lines += _nodes(graph, lambda node: _dot_node(graph, node), lambda group: [
        f"subgraph cluster_{group.id} {{", f"    label={_dot_text(group.label)}; style=rounded;"], "}")
    for edge in graph.edges:
        attributes = []
        if edge.label:
            attributes.append(f"label={_dot_text(edge.label)}")
        if edge.data:
            attributes.append("style=dotted")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_node(graph: Graph, node: str) -> str:
    kind = graph.kinds[node]
    shape = _DOT_ENDS[kind] if kind in _DOT_ENDS else STEP_TYPES[kind].dot_shape
    attributes = [f"label={_dot_text(graph.labels[node])}", f"shape={shape}"]
    if graph.styles.get(node) == "continue":
        attributes.append("style=dashed")
    return f"{node} [{', '.join(attributes)}];"
