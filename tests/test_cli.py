"""The `llm-service` command's contract: stdout carries only the result JSON, exit codes 0/1/2, validate's
one-line-per-problem report, and no Redis needed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llm_service.cli import main
from llm_service.sandbox import SandboxServer
from tests.support import REPO


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def cli_env(monkeypatch, sandbox):
    for key, value in sandbox.base_urls().items():
        monkeypatch.setenv(key, value)
    for key in ("WEATHERAPI_API_KEY", "GOOGLE_PLACES_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.setenv(key, "sandbox-key-123")
    monkeypatch.setenv("WORKFLOWS_DIR", str(REPO / "workflows"))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens: the CLI must not need Redis
    monkeypatch.setenv("LOG_FORMAT", "text")


def write(tmp_path, name, definition, prompts=None):
    (tmp_path / "definitions").mkdir(exist_ok=True)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "definitions" / f"{name}.json").write_text(json.dumps(definition))
    for rel, text in (prompts or {}).items():
        (tmp_path / "prompts" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "prompts" / rel).write_text(text)


def test_run_prints_only_the_result_and_exits_0(cli_env, capsys):
    code = main(["run", "emergency_contacts", "--input", str(REPO / "workflows/examples/emergency_contacts.json")])
    out, err = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert result["success"] and result["output"]["contacts"]
    assert "sandbox-key-123" not in out + err


def test_run_reads_input_from_stdin_and_exits_1_when_the_workflow_fails(cli_env, tmp_path, monkeypatch, capsys):
    write(tmp_path, "boom", {"name": "boom", "steps": [
        {"id": "j", "type": "transform", "config": {"operation": "join", "input": "${input.text}"}}]})
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO('{"text": "not a list"}'))
    code = main(["run", "boom", "--input", "-", "--workflows-dir", str(tmp_path)])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    error = result["metadata"]["error"]
    assert {"type", "category", "message", "retryable", "step_id"} <= set(error)
    assert error["step_id"] == "j" and error["category"] == "USER_ERROR"


@pytest.mark.parametrize("args, message", [
    (["run", "no_such_workflow", "--input", "{input}"], "not found"),
    (["run", "emergency_contacts", "--input", "/nonexistent/input.json"], "cannot read input"),
    (["run", "emergency_contacts", "--input", "{bad_json}"], "not valid JSON"),
    (["run", "emergency_contacts", "--input", "{list_json}"], "must be a JSON object"),
    (["run", "../etc/passwd", "--input", "{input}"], "not found"),
    (["run"], None),
])
def test_usage_errors_exit_2(cli_env, tmp_path, capsys, args, message):
    files = {"input": tmp_path / "in.json", "bad_json": tmp_path / "bad.json", "list_json": tmp_path / "list.json"}
    files["input"].write_text("{}")
    files["bad_json"].write_text("{nope")
    files["list_json"].write_text("[1]")
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    with pytest.raises(SystemExit) if argv == ["run"] else _nothing():
        code = main(argv)
        assert code == 2
    if message:
        assert message in capsys.readouterr().err


def test_invalid_workflow_exits_2_listing_problems(cli_env, tmp_path, capsys):
    write(tmp_path, "bad", {"name": "bad", "steps": [{"id": "a b", "type": "llm", "config": {}}]})
    (tmp_path / "in.json").write_text("{}")
    assert main(["run", "bad", "--input", str(tmp_path / "in.json"), "--workflows-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Step ID 'a b' must be alphanumeric" in err and "Must provide either" in err


def test_run_refuses_a_workflow_that_fails_validation_before_any_upstream_call(cli_env, sandbox, tmp_path, capsys):
    write(tmp_path, "typo", {"name": "typo", "steps": [
        {"id": "weather", "type": "external_api",
         "config": {"service": "weatherapi", "method": "current", "parameters": {"q": "Seattle"}}},
        {"id": "gen", "type": "llm", "config": {"prompt_template": "missing.md",
                                                 "variables": {"w": "${steps.wether.output}"}}}]})
    (tmp_path / "in.json").write_text("{}")
    before = len(sandbox.requests())
    code = main(["run", "typo", "--input", str(tmp_path / "in.json"), "--workflows-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "references step 'wether' which does not exist" in err and "Prompt file not found: missing.md" in err
    assert len(sandbox.requests()) == before


def test_validate_accepts_the_bundled_and_the_original_workflows(cli_env, capsys, original_fixture):
    assert main(["validate", "emergency_contacts", "trip_safety_briefing"]) == 0
    assert main(["validate", str(original_fixture / "definitions" / "emergency_contacts.json")]) == 0
    assert capsys.readouterr().out == ""


def test_validate_reports_one_line_per_problem(cli_env, tmp_path, capsys):
    write(tmp_path, "broken", {"name": "broken", "steps": [
        {"id": "a", "type": "llm", "config": {"prompt_template": "main.md",
                                                 "variables": {"x": "${steps.later.output}",
                                                               "y": "${steps.ghost.output}",
                                                               "z": "${nowhere.value}"}}},
        {"id": "later", "type": "llm", "config": {"prompt_template": "missing.md"}},
    ]}, prompts={"main.md": "Hello {{include:shared/gone.md}}"})
    write(tmp_path, "schema", {"name": "schema", "steps": [
        {"id": "d", "type": "transform", "config": {"operation": "nope"}},
        {"id": "d", "type": "robot", "config": {}},
        {"id": "e", "type": "external_api", "config": {"service": "weatherapi", "method": "forecast"}},
        {"id": "f", "type": "external_api", "config": {"service": "yelp", "method": "search"}}]})
    code = main(["validate", "--workflows-dir", str(tmp_path), "broken", "schema", "absent"])
    lines = capsys.readouterr().out.strip().splitlines()
    text = "\n".join(lines)
    assert code == 1
    assert "references step 'later' which runs later" in text
    assert "references step 'ghost' which does not exist" in text
    assert "unknown namespace 'nowhere'" in text
    assert "Include 'shared/gone.md' in main.md not found" in text
    assert "Prompt file not found: missing.md" in text
    assert "Unknown transformation 'nope'" in text
    assert "Unknown step type" in text
    assert "Unknown operation 'forecast' for service 'weatherapi'" in text
    assert "Unknown service 'yelp'" in text
    assert "absent: workflow not found" in text
    assert all(line.startswith(("definitions/", "absent")) for line in lines)


def test_duplicate_ids_are_reported(cli_env, tmp_path, capsys):
    step = {"id": "same", "type": "transform", "config": {"operation": "join"}}
    write(tmp_path, "dup", {"name": "dup", "steps": [step, dict(step)]})
    assert main(["validate", "--workflows-dir", str(tmp_path), "dup"]) == 1
    assert "Duplicate step IDs found: same" in capsys.readouterr().out


def test_console_script_is_installed_and_logs_go_to_stderr(cli_env, tmp_path):
    binary = REPO / ".venv" / "bin" / "llm-service"
    if not binary.exists():
        pytest.skip("console script not installed in .venv")
    completed = subprocess.run([str(binary), "run", "hello", "--input",
                                str(REPO / "workflows/examples/hello.json"), "--compact"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.strip().splitlines()) == 1
    assert json.loads(completed.stdout)["success"] is True


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_run_resumes_from_a_step_reusing_the_previous_results_records(cli_env, tmp_path, capsys):
    write(tmp_path, "two", {"name": "two", "steps": [
        {"id": "a", "type": "transform", "config": {"operation": "template", "config": {"template": "${input.word}"}}},
        {"id": "j", "type": "transform", "config": {"operation": "join", "input": "${input.text}"}}]})
    first_input, second_input = tmp_path / "first.json", tmp_path / "second.json"
    first_input.write_text('{"word": "kept", "text": "not a list"}')
    second_input.write_text('{"word": "changed", "text": ["x", "y"]}')
    common = ["run", "two", "--workflows-dir", str(tmp_path)]
    assert main([*common, "--input", str(first_input)]) == 1
    previous = tmp_path / "previous.json"
    previous.write_text(capsys.readouterr().out)
    assert set(json.loads(previous.read_text())["step_records"]) == {"a", "j"}

    assert main([*common, "--input", str(second_input), "--previous", str(previous)]) == 0  # default: from "j"
    result = json.loads(capsys.readouterr().out)
    assert result["metadata"]["reused_steps"] == ["a"]
    assert result["step_records"]["a"]["output"] == "kept"  # reused, not run with the new input

    assert main([*common, "--input", str(second_input), "--previous", str(previous), "--resume-from", "a"]) == 0
    assert json.loads(capsys.readouterr().out)["step_records"]["a"]["output"] == "changed"
    assert main([*common, "--input", str(second_input), "--resume-from", "j"]) == 2
    assert "--previous" in capsys.readouterr().err
