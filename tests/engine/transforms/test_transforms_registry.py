"""Dispatch, error wrapping and load-time parameter validation (§5.1, §10 case 51)."""
import subprocess
import sys

import pytest

from llm_service.engine.errors import CONFIG_ERROR, USER_ERROR, ConfigurationError, TransformError
from llm_service.engine.transforms import OPERATION_NAMES, run_transform, validate_params


# -- §10 case 51 ----------------------------------------------------------------------------------------------------
def test_there_are_ten_operations():
    assert set(OPERATION_NAMES) == {"extract_fields", "filter", "map", "join", "sort", "unique",
                                    "regex_extract", "template", "merge", "markdown_to_json"}
    assert len(OPERATION_NAMES) == 10


def test_unknown_operation_is_a_configuration_error_listing_the_available_ones():
    with pytest.raises(ConfigurationError) as info:
        run_transform("pivot", [1, 2], {})
    assert str(info.value).startswith("Unknown transformation: pivot. Available: ")
    assert "markdown_to_json" in str(info.value)
    assert info.value.category == CONFIG_ERROR


def test_unknown_operation_is_fatal_even_when_lenient():
    with pytest.raises(ConfigurationError):
        run_transform("pivot", [1, 2], {}, lenient=True)


def test_join_through_the_dispatcher():
    assert run_transform("join", ["a", "b", "c"], {"separator": "-"}) == "a-b-c"


# -- error wrapping ---------------------------------------------------------------------------------------------------
def test_failures_are_transform_errors_prefixed_with_the_operation():
    with pytest.raises(TransformError) as info:
        run_transform("join", {"not": "a list"}, {})
    assert str(info.value).startswith("join failed: Join requires array input")
    assert info.value.category == USER_ERROR
    assert info.value.operation == "join"


def test_missing_required_parameter_raises_at_run_time_even_when_lenient():
    with pytest.raises(TransformError, match=r"^filter failed: Missing 'condition' in config"):
        run_transform("filter", [1], {}, lenient=True)


def test_wrong_parameter_type_raises_at_run_time():
    with pytest.raises(TransformError, match=r"'reverse' must be true or false \(got a string\)"):
        run_transform("sort", [2, 1], {"reverse": "yes"})


def test_null_parameters_mean_defaults():
    assert run_transform("join", ["a", "b"], {"separator": None}) == "a, b"
    assert run_transform("join", ["a", "b"], None) == "a, b"


def test_a_null_result_is_returned_not_treated_as_failure():
    # §11 item 4: the old engine treated this legitimate "no match" as a failed step.
    assert run_transform("regex_extract", "nothing here", {"pattern": r"\d+"}) is None


# -- validate_params ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation, params", [
    ("extract_fields", {"paths": {"city": "location.city"}}),
    ("filter", {"condition": "item.age >= 18", "array_path": "people"}),
    ("map", {"expression": "item.name.upper()"}),
    ("join", {"separator": ""}),
    ("sort", {"key": "age", "reverse": True}),
    ("unique", {"key": "id"}),
    ("regex_extract", {"patterns": {"a": r"(\d+)", "b": r"(?P<w>\w+)"}, "flags": "I|M", "all_matches": True}),
    ("template", {"template": "Hello ${name}", "variables": {"name": "x"}}),
    ("merge", {"sources": ["a.output", "b.output"], "strategy": "deep"}),
    ("markdown_to_json", {"schema": "emergency_contacts"}),
])
def test_valid_parameters_have_no_problems(operation, params):
    assert validate_params(operation, params) == []


@pytest.mark.parametrize("operation, params, expected", [
    ("template", {}, "Missing 'template' in config"),
    ("template", {"template": ""}, "Missing 'template' in config"),
    ("template", {"template": "x", "variables": ["a"]}, "'variables' must be a map from placeholder name"),
    ("filter", {}, "Missing 'condition' in config"),
    ("filter", {"condition": "item.age"}, "'condition': Invalid condition 'item.age'"),
    ("map", {}, "Missing 'expression' in config"),
    ("merge", {}, "Missing 'sources' in config"),
    ("merge", {"sources": []}, "Missing 'sources' in config"),
    ("merge", {"sources": "a.output"}, "'sources' must be a non-empty list of paths"),
    ("merge", {"sources": ["a", 3]}, "'sources[1]' must be a path string (got a number)"),
    ("markdown_to_json", {}, "Missing 'schema' in config"),
    ("markdown_to_json", {"schema": "recipes"}, "Unsupported schema: recipes (supported: emergency_contacts)"),
    ("regex_extract", {}, "Missing 'pattern' or 'patterns' in config"),
    ("regex_extract", {"pattern": "(unclosed"}, "'pattern' is not a valid regular expression"),
    ("regex_extract", {"patterns": {"s": "[a-"}}, "'patterns.s' is not a valid regular expression"),
    ("regex_extract", {"pattern": "a", "flags": "I|LOCALE"}, "Unknown regex flag 'LOCALE' in 'flags'"),
    ("regex_extract", {"pattern": "a", "flags": 3}, "'flags' must be a list, or a '|' / ','-separated string"),
    ("regex_extract", {"pattern": "a", "group": 1.5}, "'group' must be a group number or a group name"),
    ("regex_extract", {"pattern": "(a)", "group": 2}, "'pattern': no such group: 2"),
    ("regex_extract", {"pattern": "(a)", "group": "missing"}, "'pattern': no such group: 'missing'"),
    ("join", {"separator": 5}, "'separator' must be a string"),
    ("sort", {"reverse": "true"}, "'reverse' must be true or false (got a string)"),
    ("sort", {"key": ["a"]}, "'key' must be a path string"),
    ("extract_fields", {"paths": ["a"]}, "'paths' must be a map from output name to path"),
    ("extract_fields", {"paths": {"a": 1}}, "'paths.a' must be a string"),
])
def test_problems_name_the_parameter_and_what_is_allowed(operation, params, expected):
    problems = validate_params(operation, params)
    assert any(expected in problem for problem in problems), problems


def test_validate_reports_unknown_operation():
    assert validate_params("pivot", {}) == [
        "Unknown transformation: pivot. Available: " + ", ".join(OPERATION_NAMES)]


def test_validate_reports_a_non_map_config():
    assert validate_params("join", ["-"]) == ["the join config must be a map of parameters (got a list)"]


def test_unresolved_references_are_checked_only_at_run_time():
    # At load time these strings are ${...} references that will become a bool, a list, a pattern...
    assert validate_params("sort", {"reverse": "${input.descending}"}) == []
    assert validate_params("merge", {"sources": "${input.paths}"}) == []
    assert validate_params("regex_extract", {"pattern": "${input.pattern}(", "flags": "${input.flags}"}) == []
    assert validate_params("markdown_to_json", {"schema": "${input.schema}"}) == []
    # ...but a value still unresolved when the operation runs is judged for what it is.
    with pytest.raises(TransformError, match="'reverse' must be true or false"):
        run_transform("sort", [1], {"reverse": "${descending}"})


def test_a_bad_flag_does_not_hide_a_bad_pattern():
    problems = validate_params("regex_extract", {"pattern": "(", "flags": "Q"})
    assert len(problems) == 2


def test_the_package_does_not_import_the_web_or_queue_stack():
    code = ("import sys, llm_service.engine.transforms as t; "
            "bad = [m for m in ('flask', 'celery', 'redis') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
