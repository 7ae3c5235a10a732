"""Workflow definitions and prompt files can never be read from outside the workflow root.

A canary file sits next to the workflow root (``outside/secret.md``, and ``outside/evil.json``, a valid definition
that would print the canary). Workflow names that try to reach them (``../``, URL-encoded, backslashes, absolute
paths, NUL bytes, Unicode look-alikes of dots and slashes) are refused by the API and the CLI; prompt templates and
``{{include:...}}`` directives that escape the prompts root (``../``, absolute, through a symlink, NUL bytes,
symlink loops) are errors of the step and of ``validate``, and never file contents. Text a user sends is never
expanded as an include.
"""
from __future__ import annotations

import json
import secrets as _random

import pytest

from llm_service.cli import main as cli_main

CANARY = f"OUTSIDE-CANARY-{_random.token_hex(8)}"
CHAT = "/openai/v1/chat/completions"


def _llm(step_config: dict) -> dict:
    return {"id": "ask", "type": "llm", "config": {"model": "openai/gpt-4o-mini", **step_config}}


@pytest.fixture
def traversal(make_stack, tmp_path):
    """The stack, with the canaries outside the root and symlinks from inside the root pointing at them."""
    outside = tmp_path / "outside"
    (outside / "definitions").mkdir(parents=True)
    (outside / "secret.md").write_text(f"The canary is {CANARY}", encoding="utf-8")
    evil = {"name": "evil", "steps": [{"id": "t", "type": "transform",
                                      "config": {"operation": "template", "config": {"template": CANARY}}}]}
    for path in (outside / "evil.json", outside / "definitions" / "evil.json"):
        path.write_text(json.dumps(evil), encoding="utf-8")
    absolute = str(outside / "secret.md")
    prompt_workflows = {
        "tpl_parent": {"prompt_template": "../../outside/secret.md"},
        "tpl_absolute": {"prompt_template": absolute},
        "tpl_inner_dotdot": {"prompt_template": "sub/../../../outside/secret.md"},
        "tpl_symlink_file": {"prompt_template": "link.md"},
        "tpl_symlink_dir": {"prompt_template": "linkdir/secret.md"},
        "tpl_nul": {"prompt_template": "greet.md\u0000../../outside/secret.md"},
        "tpl_loop": {"prompt_template": "loop1.md"},
        "system_parent": {"prompt_text": "hi", "system_prompt_template": "../../outside/secret.md"},
        "inc_parent": {"prompt_template": "inc_parent.md"},
        "inc_absolute": {"prompt_template": "inc_absolute.md"},
        "inc_symlink": {"prompt_template": "inc_symlink.md"},
        "inc_nested": {"prompt_template": "inc_nested.md"},
        "inc_nul": {"prompt_template": "inc_nul.md"},
    }
    definitions = [{"name": name, "steps": [_llm(config)]} for name, config in prompt_workflows.items()]
    definitions.append({"name": "greet", "steps": [_llm({"prompt_template": "greet.md",
                                                          "variables": {"name": "${input.name}"}})]})
    prompts = {
        "greet.md": "Say hello to ${name}.",
        "sub/keep.md": "inside",
        "inc_parent.md": "Before {{include:../../outside/secret.md}} after",
        "inc_absolute.md": f"Before {{{{include:{absolute}}}}} after",
        "inc_symlink.md": "Before {{include:link.md}} after",
        "inc_nested.md": "Before {{include:sub/deeper.md}} after",
        "sub/deeper.md": "Deeper {{include:../../../outside/secret.md}}",
        "inc_nul.md": "Before {{include:greet.md\u0000}} after",
    }
    stack = make_stack(definitions, prompts)
    root = stack.root
    (root / "prompts" / "link.md").symlink_to(outside / "secret.md")
    (root / "prompts" / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "prompts" / "loop1.md").symlink_to(root / "prompts" / "loop2.md")
    (root / "prompts" / "loop2.md").symlink_to(root / "prompts" / "loop1.md")
    (root / "definitions" / "linked.json").symlink_to(outside / "evil.json")
    (root / "definitions" / "loop_a.json").symlink_to(root / "definitions" / "loop_b.json")
    (root / "definitions" / "loop_b.json").symlink_to(root / "definitions" / "loop_a.json")
    stack.prompt_workflows = sorted(prompt_workflows)
    stack.outside = outside
    return stack


def _no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text and "canary is" not in text


# --------------------------------------------------------------------------------------------------------------
# Workflow names


ESCAPING_NAMES = [
    "../evil", "../outside/evil", "../../outside/definitions/evil", "..%2Fevil", "%2e%2e%2fevil", "..%252fevil",
    "..\\evil", "..\\..\\outside\\evil", "/etc/passwd", "/tmp/outside/evil", "~/evil", "..", ".", "",
    "definitions/../greet", "greet/", "greet.json", "greet\u0000", "evil\u0000.json", "%00greet",
    "\uff0e\uff0e\uff0fevil",      # fullwidth "../"
    "\u2024\u2024/evil",           # one-dot leaders
    "\u2025/evil",                 # two-dot leader
    "\u2215evil",                  # division slash
    "greet\u202e", " greet", "greet ", "\u200bgreet", "gre\u0301et",  # RTL override, spaces, zero-width, combining
    "x" * 101,
]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
@pytest.mark.parametrize("path", ["/api/v1/workflow", "/api/v1/workflow/validate"])
def test_escaping_workflow_names_are_refused_naming_the_field(traversal, path, name):
    response = traversal.post(path, json={"workflow_name": name, "input_data": {}})
    assert response.status_code == 422, response.get_data(as_text=True)
    detail = response.get_json()["detail"]
    assert detail["error"] == "ValidationError" and detail["message"].startswith("workflow_name: ")
    assert [issue["loc"] for issue in detail["errors"]] == [["body", "workflow_name"]]
    _no_canary(response.get_data(as_text=True))
    assert traversal.queue.jobs == []


@pytest.mark.parametrize("name", ["\uff45\uff56\uff49\uff4c", "\u00e9vil", "evil\u0661", "EVIL"])
def test_look_alike_names_that_pass_the_name_rule_only_ever_mean_their_own_file(traversal, name):
    submitted = traversal.post("/api/v1/workflow", json={"workflow_name": name, "input_data": {}})
    assert submitted.status_code == 404 and submitted.get_json()["detail"]["error"] == "WorkflowNotFound"
    validated = traversal.post("/api/v1/workflow/validate", json={"workflow_name": name, "input_data": {}})
    assert validated.status_code == 200 and validated.get_json()["valid"] is False
    _no_canary(submitted.get_data(as_text=True), validated.get_data(as_text=True))


def test_a_definition_symlinked_from_outside_the_root_is_never_loaded(traversal):
    submitted = traversal.post("/api/v1/workflow", json={"workflow_name": "linked", "input_data": {}})
    assert submitted.status_code == 404
    validated = traversal.post("/api/v1/workflow/validate", json={"workflow_name": "linked", "input_data": {}})
    assert validated.get_json()["valid"] is False
    _no_canary(submitted.get_data(as_text=True), validated.get_data(as_text=True))
    assert traversal.queue.jobs == []


def test_a_definition_symlink_loop_is_a_load_error_and_the_listing_still_answers(traversal):
    listing = traversal.get("/api/v1/workflows")
    assert listing.status_code == 200
    by_name = {w["name"]: w for w in listing.get_json()["workflows"]}
    assert by_name["loop_a"]["valid"] is False
    assert any("symlink loop" in error for error in by_name["loop_a"]["errors"])
    assert by_name["linked"]["valid"] is False and by_name["greet"]["valid"] is True

    submitted = traversal.post("/api/v1/workflow", json={"workflow_name": "loop_a", "input_data": {}})
    assert submitted.status_code == 500
    detail = submitted.get_json()["detail"]
    assert detail["error"] == "WorkflowLoadError" and "loop_a.json: symlink loop" in detail["message"]
    assert str(traversal.root) not in detail["message"]  # no server paths in the answer
    _no_canary(listing.get_data(as_text=True), submitted.get_data(as_text=True))


@pytest.mark.parametrize("name", ["../evil", "../outside/evil", "/tmp/outside/evil", "..\\evil", "evil\u0000",
                                  "\uff0e\uff0e\uff0fevil", "linked", "loop_a"])
def test_the_cli_refuses_escaping_names_with_a_usage_error(traversal, capsys, monkeypatch, keep_root_logging, name):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    input_file = traversal.root.parent / "input.json"
    input_file.write_text("{}")
    if name == "/tmp/outside/evil":
        name = str(traversal.outside / "evil")
    code = cli_main(["run", name, "--input", str(input_file), "--workflows-dir", str(traversal.root)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == "" and err.strip().splitlines()[-1].startswith("llm-service: ")
    _no_canary(out, err)


# --------------------------------------------------------------------------------------------------------------
# Prompt templates and includes


def test_validate_reports_every_escaping_prompt_path_without_reading_it(traversal):
    for name in traversal.prompt_workflows:
        response = traversal.post("/api/v1/workflow/validate", json={"workflow_name": name, "input_data": {}})
        assert response.status_code == 200, (name, response.get_data(as_text=True))
        body = response.get_json()
        assert body["valid"] is False, name
        text = " ".join(body["errors"])
        assert any(words in text for words in ("outside", "Invalid prompt path")), (name, text)
        _no_canary(response.get_data(as_text=True))


def test_running_escaping_prompt_paths_fails_the_step_with_a_config_error_and_sends_nothing(traversal):
    for name in traversal.prompt_workflows:
        job_id = traversal.submit(name, {})
        assert traversal.run(job_id)["status"] == "failed", name
        record = traversal.store.get(job_id)
        assert record["error"]["category"] == "CONFIG_ERROR", (name, record["error"])
        assert record["error"]["type"] == "PromptError" and record["error"]["step_id"] == "ask"
        for path in (f"/api/v1/status/{job_id}", f"/api/v1/jobs/{job_id}"):
            _no_canary(traversal.get(path).get_data(as_text=True))
    assert [r for r in traversal.sandbox.requests() if r["path"] == CHAT] == []


def test_include_directives_in_user_input_are_sent_verbatim_not_expanded(traversal):
    directive = "{{include:../../outside/secret.md}} {{include:%s}}" % (traversal.outside / "secret.md")
    job_id = traversal.submit("greet", {"name": directive})
    assert traversal.run(job_id)["status"] == "completed"
    [chat] = [r for r in traversal.sandbox.requests() if r["path"] == CHAT]
    assert chat["json"]["messages"] == [{"role": "user", "content": f"Say hello to {directive}."}]
    _no_canary(json.dumps(chat), traversal.get(f"/api/v1/status/{job_id}").get_data(as_text=True))
