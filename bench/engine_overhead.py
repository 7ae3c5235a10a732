"""Engine overhead and dependency-execution speed-up. A benchmark, not a test: it prints figures.

1. The engine's own cost per step, excluding upstream time:
   a. a 50-step transform workflow, against calling the same 50 operations directly (baseline, same run);
   b. emergency_contacts with instant in-process upstreams (no HTTP), against running its transforms directly.
2. emergency_contacts against the sandbox upstream with 200 ms latency per call, sequential vs
   ``"execution": "dependencies"``, as ratios to its critical path (two round trips, measured in the same run).

Run: ``.venv/bin/python -m bench.engine_overhead [--repeat N]`` (well under a minute).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.harness import median_seconds
from llm_service.config import Config
from llm_service.engine import Engine
from llm_service.engine.ports import (
    ChatResponse,
    NullCache,
    OperationSpec,
    ServiceResult,
)
from llm_service.engine.transforms import run_transform
from llm_service.http import build_http_client
from llm_service.sandbox import SandboxServer
from llm_service.services import build_engine

REPO = Path(__file__).resolve().parent.parent

EMERGENCY_INPUT = REPO / "workflows" / "examples" / "emergency_contacts.json"


def transform_chain(steps: int) -> dict:
    """A chain alternating template / regex / join / sort / unique steps, each reading the previous output."""
    ops = []
    for i in range(steps):
        prev = f"${{steps.s{i - 1}.output}}" if i else "${input.words}"
        kind = i % 5
        if kind == 0:
            config = {"operation": "sort", "input": prev, "config": {}}
        elif kind == 1:
            config = {"operation": "unique", "input": prev, "config": {}}
        elif kind == 2:
            config = {"operation": "join", "input": prev, "config": {"separator": " "}}
        elif kind == 3:
            config = {"operation": "regex_extract", "input": prev, "config": {"pattern": "(\\w+)",
                                                                              "all_matches": True}}
        else:
            config = {"operation": "sort", "input": prev, "config": {"reverse": True}}
        ops.append({"id": f"s{i}", "type": "transform", "config": config})
    return {"name": "chain", "steps": ops}


def direct_chain(definition: dict, words: list) -> None:
    """The baseline: the same operations, called directly, no engine."""
    value = words
    for step in definition["steps"]:
        params = {k: v for k, v in step["config"]["config"].items()}
        value = run_transform(step["config"]["operation"], value, params)


class Instant:
    """In-process WeatherAPI / Places / chat stand-ins that answer immediately."""

    upstream = "instant://in-process"  # who answers (part of the cache key)

    def __init__(self, name: str, ops: tuple[str, ...], answer: dict) -> None:
        self.name, self.answer = name, answer
        self.operations = {op: OperationSpec(op) for op in ops}

    def call(self, operation, params, *, timeout, cancel=None):
        return ServiceResult(self.answer)


class InstantChat:
    name = "openrouter"

    def __init__(self, content: str) -> None:
        self.content = content

    def complete(self, request, *, timeout, cancel=None):
        return ChatResponse(content=self.content, input_tokens=1000, output_tokens=500, total_tokens=1500)


class Registry:
    def __init__(self, *items):
        self.items = {i.name: i for i in items}
        self.default = "openrouter"

    def get(self, name):
        return self.items[name or self.default]

    def names(self):
        return list(self.items)


def bench_transform_chain(repeat: int) -> None:
    root = Path(tempfile.mkdtemp())
    (root / "definitions").mkdir()
    (root / "prompts").mkdir()
    definition = transform_chain(50)
    (root / "definitions" / "chain.json").write_text(json.dumps(definition))
    engine = Engine(workflows_dir=root, services=Registry(), providers=Registry())
    words = ["delta", "alpha", "charlie", "bravo", "alpha", "echo"] * 5
    result = engine.run("chain", {"words": words})
    assert result["success"], result["metadata"].get("error")
    engine_s = median_seconds(lambda: engine.run("chain", {"words": words}), repeat)
    direct_s = median_seconds(lambda: direct_chain(definition, words), repeat)
    per_step_ms = engine_s / 50 * 1000
    overhead_ms = (engine_s - direct_s) / 50 * 1000
    print(f"[1a] 50-step transform workflow: {engine_s * 1000:.2f} ms per run, {per_step_ms:.3f} ms per step; "
          f"direct calls (baseline) {direct_s * 1000:.2f} ms; engine overhead {overhead_ms:.3f} ms per step "
          f"(ratio engine/direct {engine_s / direct_s:.1f}x); target < 1 ms per step")


def emergency_markdown() -> str:
    contacts = "\n".join(
        f"### Place {i}\n**Phone**: +1-555-010-{i:04d}\n**Category**: medical\n**Priority**: critical\n"
        f"**Fit Score**: 90\n**Reasoning**: Close by.\n**Relevant Scenarios**: flood\n**24/7 Available**: yes\n"
        for i in range(6))
    return (f"## Emergency Contacts Analysis\n\n{contacts}\n## Meeting Locations\n\n"
            "### Primary Meeting Location: Park\n**Address**: 1 Park Rd\n**Description**: Open field.\n"
            "**Reasoning**: High ground.\n**Practical Details**: parking\n**Suitable For**: flood\n")


def bench_emergency_instant_upstreams(repeat: int, workflows: Path, input_data: dict) -> None:
    places = {"results": [{"name": f"Place {i}", "vicinity": f"{i} Main St", "place_id": f"p{i}"}
                          for i in range(5)], "status": "OK"}
    services = Registry(Instant("weatherapi", ("current",), {"location": {"name": "X"}, "current": {}}),
                        Instant("google_places", ("nearby_search", "text_search", "place_details"), places))
    engine = Engine(workflows_dir=workflows, services=services, providers=Registry(InstantChat(emergency_markdown())))
    workflow = engine.load("emergency_contacts")
    steps = workflow.total_steps()
    result = engine.run(workflow, input_data)
    assert result["success"], result["metadata"].get("error")
    engine_s = median_seconds(lambda: engine.run(workflow, input_data), repeat)
    md = emergency_markdown()
    direct_s = median_seconds(lambda: run_transform("markdown_to_json", md, {"schema": "emergency_contacts"}), repeat)
    print(f"[1b] emergency_contacts ({steps} steps), instant in-process upstreams: {engine_s * 1000:.2f} ms per "
          f"run, {engine_s / steps * 1000:.3f} ms per step (includes its markdown parse, "
          f"{direct_s * 1000:.3f} ms on its own; ratio run/parse {engine_s / direct_s:.1f}x); target < 1 ms per step")


def bench_latency(workflows: Path, input_data: dict, latency_ms: float, repeat: int) -> None:
    with SandboxServer(latency_ms=latency_ms) as sandbox:
        env = {**sandbox.base_urls(), "WEATHERAPI_API_KEY": "sandbox", "GOOGLE_PLACES_API_KEY": "sandbox",
               "OPENROUTER_API_KEY": "sandbox", "WORKFLOWS_DIR": str(workflows)}
        config = Config.from_env(env)
        http = build_http_client(config)
        engine = build_engine(config, http=http, redis_client=None)
        engine.tools.cache = NullCache()  # every run must really call the upstreams
        workflow = engine.load("emergency_contacts")

        def critical_path() -> None:  # two dependent round trips: one upstream fetch, then the LLM call
            http.request("GET", f"{env['WEATHERAPI_BASE_URL']}/current.json",
                         params={"key": "sandbox", "q": "47.6,-122.3"}, timeout=10)
            http.request("POST", f"{env['OPENROUTER_BASE_URL']}/chat/completions",
                         headers={"Authorization": "Bearer sandbox"},
                         json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)

        def run(mode: str) -> None:
            result = engine.run(workflow, input_data, execution=mode)
            assert result["success"], result["metadata"].get("error")

        base = median_seconds(critical_path, repeat)
        seq = median_seconds(lambda: run("sequential"), repeat)
        deps = median_seconds(lambda: run("dependencies"), repeat)
        http.close()
    print(f"[2] emergency_contacts, sandbox upstream with {latency_ms:.0f} ms latency: critical path (2 round "
          f"trips, baseline) {base * 1000:.0f} ms; sequential {seq * 1000:.0f} ms = {seq / base:.2f}x; "
          f"dependencies {deps * 1000:.0f} ms = {deps / base:.2f}x (target <= 1.15x; sequential makes 5 round "
          f"trips = {5 * latency_ms / (2 * latency_ms):.1f}x in theory)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--workflows-dir", default=str(REPO / "workflows"))
    args = parser.parse_args()
    workflows = Path(args.workflows_dir)
    input_data = json.loads((workflows / "examples" / "emergency_contacts.json").read_text())
    print(f"python {sys.version.split()[0]}; workflows {workflows}")
    bench_transform_chain(args.repeat)
    bench_emergency_instant_upstreams(args.repeat, workflows, input_data)
    bench_latency(workflows, input_data, args.latency_ms, max(3, args.repeat // 10))


if __name__ == "__main__":
    main()
