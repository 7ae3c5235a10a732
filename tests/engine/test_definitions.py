"""Definitions (the old format accepted exactly), references, and prompt loading — the old acceptance cases
(reference §10, cases 1-23) adapted to the DECISIONS changes."""
from __future__ import annotations

import json
import os

import pytest

from llm_service.engine.definitions import (DefinitionLoader, WorkflowInvalid, WorkflowLoadError, WorkflowNotFound,
                                            definition_path, parse_workflow)
from llm_service.engine.errors import PromptError, ReferenceError_
from llm_service.engine.prompts import PromptLoader, render_prompt
from llm_service.engine.references import Resolver, Scope, lookup, to_text

LLM = {"id": "gen", "type": "llm", "config": {"prompt_text": "hi"}}


def wf(*steps, **root):
    return {"name": "w", "steps": list(steps) or [LLM], **root}


def problems(data, **kwargs):
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(data, **kwargs)
    return "\n".join(info.value.problems)


# -- schema -------------------------------------------------------------------------------------------------------

def test_step_ids_and_defaults():
    workflow = parse_workflow(wf({**LLM, "id": "test-step_01", "output_var": "custom_output"}))
    step = workflow.steps[0]
    assert step.id == "test-step_01" and step.error_mode is None and step.output_var == "custom_output"
    assert workflow.version == "1.0.0" and workflow.timeout_seconds == 600 and workflow.default_error_mode == "fail"
    for bad in ("test step", "test@step", "_"):
        assert "Step ID" in problems(wf({**LLM, "id": bad}))
    assert parse_workflow(wf({**LLM, "id": "café"})).steps[0].id == "café"


def test_duplicate_and_missing_steps():
    assert "Duplicate step IDs found: step1" in problems(wf({**LLM, "id": "step1"}, {**LLM, "id": "step1"}))
    assert "at least one step" in problems({"name": "w", "steps": []})
    assert "steps" in problems({"name": "w"})
    nested = {"id": "par", "type": "parallel", "config": {"steps": [{**LLM, "id": "gen"}]}}
    assert "Duplicate step IDs found: gen" in problems(wf(LLM, nested))


@pytest.mark.parametrize("value, expected", [(300, 300), ("300", 300), (1, 1), (3600, 3600)])
def test_timeout_accepted(value, expected):
    assert parse_workflow(wf(timeout_seconds=value)).timeout_seconds == expected


@pytest.mark.parametrize("value", [0, 4000, 12.5, True, "abc"])
def test_timeout_rejected(value):
    assert "timeout_seconds" in problems(wf(timeout_seconds=value))


def test_root_timeout_is_an_alias_and_name_must_be_a_string():
    assert parse_workflow(wf(timeout=300)).timeout_seconds == 300
    assert "name" in problems({"name": 5, "steps": [LLM]})
    assert "version" in problems(wf(version=2))


def test_llm_config_defaults_and_ranges():
    settings = parse_workflow(wf()).steps[0].settings
    assert (settings.model, settings.temperature, settings.max_tokens, settings.top_p) == (
        "anthropic/claude-3.5-sonnet", 0.7, 4000, None)
    for temperature in (0.0, 0.5, 1.0):
        parse_workflow(wf({**LLM, "config": {"prompt_text": "x", "temperature": temperature}}))
    for temperature in (-0.1, 2.5):
        assert "temperature" in problems(wf({**LLM, "config": {"prompt_text": "x", "temperature": temperature}}))
    for tokens in (1, 16000):
        parse_workflow(wf({**LLM, "config": {"prompt_text": "x", "max_tokens": tokens}}))
    for tokens in (0, 20000):
        assert "max_tokens" in problems(wf({**LLM, "config": {"prompt_text": "x", "max_tokens": tokens}}))
    assert "Must provide either 'prompt_template' or 'prompt_text'" in problems(wf({**LLM, "config": {}}))


def test_external_api_config_aliases_and_known_services():
    services = {"weatherapi": {"current"}, "google_places": {"nearby_search"}}
    step = {"id": "w", "type": "external_api", "config": {"service": "weatherapi", "method": "current",
                                                          "parameters": {"q": "x"}, "cache_ttl": 7200}}
    settings = parse_workflow(wf(step), services=services).steps[0].settings
    assert (settings.operation, settings.parameters, settings.cache_ttl) == ("current", {"q": "x"}, 7200)
    both = {"id": "w", "type": "external_api", "config": {"service": "weatherapi", "method": "nope",
                                                          "operation": "current", "parameters": {"a": 1},
                                                          "config": {"b": 2}}}
    settings = parse_workflow(wf(both), services=services).steps[0].settings
    assert settings.operation == "current" and settings.parameters == {"b": 2}
    assert "Missing required field: operation" in problems(
        wf({"id": "x", "type": "external_api", "config": {"service": "weatherapi"}}))
    assert "Unknown service 'yelp'" in problems(
        wf({"id": "x", "type": "external_api", "config": {"service": "yelp", "method": "a"}}), services=services)


def test_unknown_keys_are_ignored_and_transforms_need_an_operation():
    parse_workflow(wf({**LLM, "surprise": 1}, unknown_root_key=True))
    assert "operation" in problems(wf({"id": "t", "type": "transform", "config": {"input_path": "x"}}))


def test_conditional_condition_is_parsed_at_load():
    step = {"id": "c", "type": "conditional", "config": {"condition": "${input.x} ==", "then": [LLM]}}
    assert "condition" in problems(wf(step))


def test_error_lines_name_the_file_step_and_field():
    text = problems(wf({"id": "gen", "type": "llm", "config": {"prompt_text": "x", "max_tokens": 0}}),
                    source="definitions/w.json")
    assert text.startswith("definitions/w.json: step 'gen' (steps[0].config.max_tokens):")


# -- loading ------------------------------------------------------------------------------------------------------

def test_names_cannot_escape_the_definitions_directory(tmp_path):
    (tmp_path / "definitions").mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(wf()))
    for name in ("../secret", "..", "a/b", "/etc/passwd", "x\x00y", "", "a" * 101):
        with pytest.raises(WorkflowNotFound):
            definition_path(tmp_path, name)
    with pytest.raises(WorkflowNotFound, match="Workflow 'missing' not found"):
        DefinitionLoader(tmp_path).load("missing")


def test_malformed_json_and_cache_notices_edits(tmp_path):
    (tmp_path / "definitions").mkdir()
    path = tmp_path / "definitions" / "w.json"
    path.write_text("{not json")
    loader = DefinitionLoader(tmp_path)
    with pytest.raises(WorkflowLoadError, match="Invalid JSON"):
        loader.load("w")
    path.write_text(json.dumps(wf(version="1.0.0")))
    assert loader.load("w").version == "1.0.0"
    path.write_text(json.dumps(wf(version="2.0.0")))
    os.utime(path, ns=(1, 10**18))
    assert loader.load("w").version == "2.0.0"


# -- references ---------------------------------------------------------------------------------------------------

def test_paths_and_indexes():
    data = {"location": {"city": "Seattle"}, "items": ["first", "second"], "matrix": [[1, 2, 3], [4, 5, 6],
                                                                                     [7, 8, 9]],
            "categories": [{}, {"items": [{"phone": "911"}]}]}
    scope = Scope(data, {"fetch": {"output": {"count": 10}, "success": True, "count": 10}})
    assert scope.lookup("input.location.city") == "Seattle"
    assert scope.lookup("input.items[1]") == "second" and scope.lookup("input.items[-1]") == "second"
    assert scope.lookup("input.matrix[2][2]") == 9
    assert scope.lookup("input.categories[1].items[0].phone") == "911"
    assert scope.lookup("steps.fetch.output.count") == 10 and scope.lookup("steps.fetch.count") == 10
    assert scope.lookup("input") is data


@pytest.mark.parametrize("path, message", [
    ("", "Path cannot be empty"), ("unknown.value", "Unknown namespace"), ("input.missing", "no key 'missing'"),
    ("input.items[5]", "out of range"), ("input.value[0]", "cannot index"), ("input.items[0", "Unmatched bracket"),
    ("input.items[abc]", "Invalid array index")])
def test_reference_errors(path, message):
    with pytest.raises(ReferenceError_, match=message):
        lookup({"input": {"items": ["a"], "value": "text"}, "steps": {}, "context": {}}, path)


def test_whole_string_keeps_type_and_embedded_text_renders_json():
    scope = Scope({"d": {"a": 1, "b": "x"}, "s": "str", "n": None, "t": True, "f": 2.5}, {})
    resolver = Resolver(scope.lookup)
    assert resolver.resolve("${input.d}") == {"a": 1, "b": "x"}
    assert resolver.resolve("x ${input.d}") == 'x {"a": 1, "b": "x"}'
    assert resolver.resolve("${input.n}|${input.t}|${input.f}") == "null|true|2.5"
    assert resolver.resolve("a ${input.missing} b ${input.s}") == "a ${input.missing} b str"
    assert resolver.warnings and "input.missing" in resolver.warnings[0]
    assert resolver.resolve({"k": ["${input.s}", {"deep": "${input.f}"}]}) == {"k": ["str", {"deep": 2.5}]}
    assert to_text(["a", 1, None, True]) == '["a", 1, null, true]'


# -- prompts ------------------------------------------------------------------------------------------------------

@pytest.fixture
def prompts(tmp_path):
    files = {"simple.md": "Hello {{name}}!", "main.md": "Start\n{{include:simple.md}}\nEnd",
             "sub/inner.md": "Inner {{include:../shared/tone.md}} and {{include:../simple.md}}",
             "shared/tone.md": "TONE", "a.md": "A: {{include:b.md}}", "b.md": "B: {{include:a.md}}",
             "self.md": "S[{{include:self.md}}]", "outside.md": "{{include:../../etc/passwd}}", "empty.md": ""}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for i in range(16):
        (tmp_path / f"level-{i}.md").write_text(f"L{i} {{{{include:level-{i + 1}.md}}}}" if i < 15 else "end")
    return PromptLoader(tmp_path)


def test_includes_expand_relative_to_the_including_file(prompts):
    assert prompts.load("simple.md") == "Hello {{name}}!"
    assert prompts.load("main.md") == "Start\nHello {{name}}!\nEnd"
    assert prompts.load("sub/inner.md") == "Inner TONE and Hello {{name}}!"
    assert prompts.load("empty.md") == ""


@pytest.mark.parametrize("template, message", [
    ("a.md", "Circular include: a.md -> b.md -> a.md"), ("self.md", "Circular include: self.md -> self.md"),
    ("outside.md", "outside the prompts directory"), ("level-0.md", "nested deeper than 10 levels"),
    ("nonexistent.md", "Prompt file not found: nonexistent.md"),
    ("../../etc/passwd", "Path outside base directory"), ("/etc/passwd", "Path outside base directory")])
def test_include_and_path_errors_are_prompt_errors(prompts, template, message):
    with pytest.raises(PromptError, match=message.replace("(", r"\(")) as info:
        prompts.load(template)
    assert info.value.category == "CONFIG_ERROR"


def test_prompt_cache_notices_edited_includes(prompts, tmp_path):
    assert prompts.load("main.md").endswith("End")
    assert prompts.stats()["size"] == 1
    (tmp_path / "simple.md").write_text("Changed")
    os.utime(tmp_path / "simple.md", ns=(1, 10**18))
    assert prompts.load("main.md") == "Start\nChanged\nEnd"


def test_prompt_substitution():
    text, warnings = render_prompt("Hello ${name}, you are ${age} years old. ${location.city} ${items[0]} "
                                   "${flag} ${nothing} ${count_map} ${missing} {{kept}}",
                                   {"name": "Alice", "age": 30, "location": {"city": "Seattle"}, "items": ["x"],
                                    "flag": True, "nothing": None, "count_map": {"count": 10}})
    assert text == ('Hello Alice, you are 30 years old. Seattle x true null {"count": 10} ${missing} {{kept}}')
    assert len(warnings) == 1 and "${missing}" in warnings[0]
