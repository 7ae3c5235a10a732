"""Parallel steps, conditionals and dependency execution; and proof that they work under eventlet and gevent
monkey-patching (green threads) as well as plain threads."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.engine.fakes import FakeProvider, FakeService, api_step, make_engine, step, write_workflow
from llm_service.engine.errors import UpstreamServerError

HERE = Path(__file__).parent


def echo(params, **_):
    return dict(params)


def meeting(count):
    """A service whose calls only return once `count` of them are in flight at the same time."""
    barrier = threading.Barrier(count, timeout=10)

    def meet(params, **_):
        barrier.wait()
        return dict(params)
    return meet


def test_parallel_children_run_at_once_and_are_recorded(tmp_path):
    name = write_workflow(tmp_path, {"name": "p", "steps": [
        step("all", "parallel", {"steps": [api_step(f"c{i}", "meet", {"i": i}) for i in range(3)]}),
        api_step("after", "echo", {"first": "${steps.c0.data.i}", "all": "${steps.all.output.c2.data.i}"})]})
    result = make_engine(tmp_path, FakeService("fake", meet=meeting(3), echo=echo)).run(name, {})
    assert result["success"], result["metadata"].get("error")
    assert result["output"]["data"] == {"first": 0, "all": 2}
    assert [s["step_id"] for s in result["steps_executed"]] == ["all", "c0", "c1", "c2", "after"]


def test_parallel_width_is_bounded(tmp_path):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def count(params, **_):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        threading.Event().wait(0.02)
        with lock:
            in_flight[0] -= 1
        return {}

    name = write_workflow(tmp_path, {"name": "p", "steps": [step("all", "parallel", {
        "max_concurrency": 2, "steps": [api_step(f"c{i}", "count") for i in range(6)]})]})
    result = make_engine(tmp_path, FakeService("fake", count=count)).run(name, {})
    assert result["success"] and peak[0] <= 2


def test_a_failing_child_fails_the_parallel_step(tmp_path):
    def broken(params, **_):
        raise UpstreamServerError("Server error (502): bad gateway")

    name = write_workflow(tmp_path, {"name": "p", "steps": [step("all", "parallel", {"steps": [
        api_step("ok", "echo"), api_step("bad", "broken"),
        api_step("soft", "broken", error_mode="continue")]}), api_step("never", "echo")]})
    result = make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(name, {})
    assert result["success"] is False
    assert result["metadata"]["error"]["step_id"] == "bad"
    assert "never" not in [s["step_id"] for s in result["steps_executed"]]


def test_conditional_runs_one_branch_and_records_the_other_as_skipped(tmp_path):
    definition = {"name": "c", "steps": [
        step("check", "conditional", {
            "condition": "${input.tier} == 'pro' and len(${input.items}) > 1",
            "then": [api_step("pro", "echo", {"plan": "full"})],
            "else": [api_step("basic", "echo", {"plan": "lite"})]}),
        api_step("use", "echo", {"pro": "${steps.pro.data.plan}", "basic": "${steps.basic.data.plan}",
                                 "branch": "${steps.check.branch}"})]}
    name = write_workflow(tmp_path, definition)
    engine = make_engine(tmp_path, FakeService("fake", echo=echo))
    pro = engine.run(name, {"tier": "pro", "items": [1, 2]})
    assert pro["output"]["data"] == {"pro": "full", "basic": None, "branch": "then"}
    skipped = next(s for s in pro["steps_executed"] if s["step_id"] == "basic")
    assert skipped["skipped"] is True and skipped["success"] is False
    free = engine.run(name, {"tier": "free", "items": []})
    assert free["output"]["data"] == {"pro": None, "basic": "lite", "branch": "else"}


def graph_workflow(service_op="echo"):
    """The emergency_contacts shape: four independent fetches, a whole-context transform, an LLM, a parse."""
    return {"name": "graph", "steps": [
        api_step("weather", service_op, {"q": "${input.q}"}),
        api_step("hospitals", service_op, {"type": "hospital"}),
        api_step("police", service_op, {"type": "police"}),
        api_step("fire", service_op, {"type": "fire"}),
        step("fmt", "transform", {"operation": "template", "config": {
            "template": "${h}/${p}/${f}", "variables": {"h": "${steps.hospitals.data.type}",
                                                       "p": "${steps.police.data.type}",
                                                       "f": "${steps.fire.data.type}"}}}),
        step("gen", "llm", {"prompt_text": "${places} in ${w}",
                            "variables": {"places": "${steps.fmt.output}", "w": "${steps.weather.data.q}"}}),
        step("parse", "transform", {"operation": "regex_extract", "input": "${steps.gen.output.content}",
                                    "config": {"pattern": "in (\\w+)"}})]}


def test_dependency_mode_overlaps_independent_steps_and_matches_sequential(tmp_path):
    name = write_workflow(tmp_path, graph_workflow("meet"))
    reply = FakeProvider(lambda request: request.messages[0]["content"])
    deps = make_engine(tmp_path, FakeService("fake", meet=meeting(4)), provider=reply).run(
        name, {"q": "here"}, execution="dependencies")
    assert deps["success"], deps["metadata"].get("error")

    write_workflow(tmp_path, graph_workflow("echo"))
    seq = make_engine(tmp_path, FakeService("fake", echo=echo), provider=reply).run(
        name, {"q": "here"}, execution="sequential")
    assert deps["output"] == seq["output"] == "here"
    assert [s["step_id"] for s in deps["steps_executed"]] == [s["step_id"] for s in seq["steps_executed"]]
    assert deps["metadata"]["execution"] == "dependencies"


def test_dependency_mode_failure_reports_what_sequential_would(tmp_path):
    def broken(params, **_):
        raise UpstreamServerError("Server error (500): down")

    definition = {"name": "f", "steps": [api_step("a", "echo"), api_step("b", "broken"), api_step("c", "echo"),
                                         api_step("d", "echo", {"x": "${steps.a.data}"})]}
    name = write_workflow(tmp_path, definition)
    results = {mode: make_engine(tmp_path, FakeService("fake", echo=echo, broken=broken)).run(
        name, {}, execution=mode) for mode in ("sequential", "dependencies")}
    for result in results.values():
        assert result["metadata"]["error"]["step_id"] == "b"
        assert [s["step_id"] for s in result["steps_executed"]] == ["a", "b"]


def test_workflow_can_opt_into_dependency_execution(tmp_path):
    definition = graph_workflow("meet")
    definition["execution"] = "dependencies"
    name = write_workflow(tmp_path, definition)
    result = make_engine(tmp_path, FakeService("fake", meet=meeting(4)),
                         provider=FakeProvider(lambda r: r.messages[0]["content"])).run(name, {"q": "x"})
    assert result["success"] and result["metadata"]["execution"] == "dependencies"


def _probe(mode):
    completed = subprocess.run([sys.executable, str(HERE / "pool_probe.py"), mode], capture_output=True,
                               text=True, timeout=120, cwd=HERE)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["eventlet", "gevent", "threads"])
def test_parallel_and_dependencies_under_each_pool(mode):
    if mode != "threads" and importlib.util.find_spec(mode) is None:
        pytest.skip(f"{mode} is not installed")
    verdict = _probe(mode)
    assert verdict["errors"] == []
    assert verdict["fanout_ok"] and verdict["graph_ok"]
    assert verdict["fanout_output"] == {f"c{i}": {"success": True, "data": {"who": i}, "cached": False,
                                                  "metadata": {"fake": True}} for i in range(3)}
    assert verdict["graph_output"] == {"parts": ["x", "y", "z"]}
    assert verdict["green"] is (mode != "threads")


def test_a_continue_parent_leaves_its_failed_and_unfinished_children_readable_as_null(tmp_path):
    definition = {"name": "p1", "steps": [
        step("par", "parallel", {"max_concurrency": 1, "steps": [
            step("bad", "transform", {"operation": "join", "input": "${input.text}"}),
            step("good", "transform", {"operation": "join", "input": "${input.list}"})]}, error_mode="continue"),
        step("after", "transform", {"operation": "template", "input": "${input}", "config": {
            "template": "${b}|${g}|${p}", "variables": {"b": "${steps.bad.output}", "g": "${steps.good.output}",
                                                       "p": "${steps.par.output}"}}}),
        step("all", "transform", {"operation": "extract_fields", "input": "${steps}",
                                  "config": {"paths": {"bad": "bad"}}})]}
    name = write_workflow(tmp_path, definition)
    result = make_engine(tmp_path).run(name, {"text": "abc", "list": ["a"]})
    assert result["success"], result["metadata"].get("error")
    assert [s["step_id"] for s in result["steps_executed"]] == ["par", "bad", "good", "after", "all"]
    assert result["steps_executed"][2]["skipped"] is True
    assert result["steps_executed"][3]["output"] == "null|null|null"
    assert set(result["output"]["bad"]) == {"output", "success", "error"}  # no internal markers leak
