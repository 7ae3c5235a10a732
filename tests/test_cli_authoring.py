"""`llm-service dry-run` and `llm-service diagram`: no upstream request, no Redis, plain text in a pipe."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from llm_service.cli import main
from tests.support import REPO

EXAMPLES = REPO / "workflows" / "examples"
KEY = "sk-or-dry-run-secret-42"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("WORKFLOWS_DIR", str(REPO / "workflows"))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:  # any upstream request would fail
        yield rsps
        assert not rsps.calls


@pytest.mark.parametrize("name", ["emergency_contacts", "trip_safety_briefing", "hello", "transform_chain",
                                  "household_readiness"])
def test_dry_run_of_each_bundled_workflow_with_its_example_input(env, capsys, name):
    assert main(["dry-run", name, "--input", str(EXAMPLES / f"{name}.json")]) == 0
    out, _ = capsys.readouterr()
    assert "\x1b" not in out and KEY not in out
    workflow_steps = [line for line in out.splitlines() if line.lstrip("│ ").startswith(("├─ ", "└─ "))]
    assert workflow_steps, out
    assert "Upstream calls" in out
    if name != "transform_chain":
        assert "LLM estimate" in out and "total" in out


def test_dry_run_text_shows_plan_order_waves_references_prompts_and_cost_table(env, capsys):
    assert main(["dry-run", "emergency_contacts", "--input", str(EXAMPLES / "emergency_contacts.json")]) == 0
    out, _ = capsys.readouterr()
    order = [out.index(f" {step} ") for step in ("fetch_weather", "format_places_data", "generate_contacts",
                                                 "parse_contacts")]
    assert order == sorted(order)
    assert "1. fetch_weather, fetch_hospitals, fetch_police, fetch_fire_stations" in out
    assert "reads: steps.generate_contacts.markdown" in out
    assert "provides: steps.fetch_weather.{output, success, data, cached, metadata}" in out
    assert "user message:" in out and "${steps.format_weather.output}" in out and "Springfield, IL" in out
    assert "openrouter: 1 (at most 3)" in out and "google_places: 3" in out
    assert "generate_contacts  anthropic/claude-3.5-sonnet" in out


def test_dry_run_json_on_the_original_workflow_read_in_place(env, capsys, original_fixture):
    path = original_fixture / "definitions" / "emergency_contacts.json"
    assert main(["dry-run", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["workflow"]["name"] == "emergency_contacts" and plan["input_given"] is False
    assert [s["id"] for s in plan["steps"]][0] == "fetch_weather"
    estimates = plan["llm_estimates"]
    assert estimates and all(e["prompt_tokens"] > 0 and e["cost_usd"] > 0 for e in estimates)
    assert plan["upstream_calls"]["openrouter"]["calls"] == len(estimates)


def test_dry_run_of_an_unknown_workflow_exits_2(env, capsys):
    assert main(["dry-run", "no_such_workflow"]) == 2
    assert "not found" in capsys.readouterr().err


def test_diagram_writes_a_file_and_dot_to_stdout(env, tmp_path, capsys):
    target = tmp_path / "ec.mmd"
    assert main(["diagram", "emergency_contacts", "-o", str(target)]) == 0
    assert target.read_text().startswith("%% emergency_contacts") and "flowchart TD" in target.read_text()
    assert main(["diagram", "emergency_contacts", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("// emergency_contacts")


def test_dry_run_in_a_pipe_is_plain_text():
    script = Path(sys.executable).parent / "llm-service"
    done = subprocess.run([str(script), "dry-run", "hello"], capture_output=True,
                          text=True, env={"WORKFLOWS_DIR": str(REPO / "workflows"), "PATH": "/usr/bin:/bin"},
                          timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "hello 1.0.0" in done.stdout


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    import io

    from llm_service.cli_authoring import PlanPrinter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert PlanPrinter(Terminal()).colour and not PlanPrinter(io.StringIO()).colour
    monkeypatch.setenv("NO_COLOR", "1")
    assert not PlanPrinter(Terminal()).colour


def test_a_reader_that_stops_early_gets_no_traceback():
    """`llm-service dry-run x | head`: a pipe whose reader has gone ends the command quietly."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: every write gets EPIPE
    try:
        done = subprocess.run([str(Path(sys.executable).parent / "llm-service"), "dry-run", "emergency_contacts"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, cwd=REPO,
                              env={"PATH": "/usr/bin:/bin", "WORKFLOWS_DIR": str(REPO / "workflows"),
                                   "REDIS_URL": "redis://127.0.0.1:1/0"})
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
