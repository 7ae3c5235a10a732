"""regex_extract and template (§10 cases 47 and 49, plus the binding decisions on both)."""
import pytest

from llm_service.engine.errors import TransformError
from llm_service.engine.transforms import run_transform


def regex(data, **params):
    return run_transform("regex_extract", data, params)


# ===================================================================================================== regex_extract
def test_explicit_groups():
    # §10 case 47: group 0 is the whole match, group 1 the capture.
    assert regex("Error: File not found", pattern=r"Error: (.+)", group=0) == "Error: File not found"
    assert regex("Error: File not found", pattern=r"Error: (.+)", group=1) == "File not found"


def test_without_group_a_capturing_pattern_gives_group_one():
    # Binding decision (§5.9): the old default was the whole match, "Error: File not found".
    assert regex("Error: File not found", pattern=r"Error: (.+)") == "File not found"


def test_without_group_a_pattern_without_groups_gives_the_whole_match():
    assert regex("order 1234 shipped", pattern=r"\d+") == "1234"
    assert regex("abc", pattern=r"(?:a)b") == "ab"


def test_all_matches():
    text = "Contact ann@example.com, bob@test.org or cy@site.net."
    emails = regex(text, pattern=r"[\w.]+@[\w.]+\w", all_matches=True)
    assert emails == ["ann@example.com", "bob@test.org", "cy@site.net"]
    assert regex(text, pattern=r"([\w.]+)@", all_matches=True) == ["ann", "bob", "cy"]
    assert regex("none", pattern=r"\d", all_matches=True) == []


def test_no_match_is_null():
    assert regex("Everything is fine", pattern=r"Error: (.+)") is None


def test_named_group():
    assert regex("Temperature: 25°C", pattern=r"(?P<temp>\d+)°C", group="temp") == "25"
    assert regex("Temperature: 25°C", pattern=r"(?P<temp>\d+)°C", group="1") == "25"


def test_group_that_did_not_participate_is_null():
    assert regex("b", pattern=r"(a)?b") is None


def test_bad_group_raises():
    with pytest.raises(TransformError, match="no such group"):
        regex("abc", pattern=r"(a)", group=3)


def test_patterns_map_wins_over_pattern():
    text = "Name: Ann\nAge: 31\n"
    result = regex(text, pattern="ignored", patterns={"name": r"Name: (\w+)", "age": r"Age: (\d+)",
                                                      "city": r"City: (\w+)"})
    assert result == {"name": "Ann", "age": "31", "city": None}


def test_patterns_with_all_matches_and_explicit_group():
    text = "a1 b2 c3"
    assert regex(text, patterns={"letters": r"([a-z])(\d)", "digits": r"\d"}, all_matches=True) == \
        {"letters": ["a", "b", "c"], "digits": ["1", "2", "3"]}
    assert regex(text, patterns={"pairs": r"([a-z])(\d)"}, group=2) == {"pairs": "1"}


def test_default_flags_are_dotall_only_so_dollar_is_end_of_text():
    # Binding decision: the old engine always added MULTILINE.
    text = "## Executive Summary\n\nPara one line.\nPara two line.\n\n## Risks\n\nFlood.\nFire."
    pattern = r"## Executive Summary\s*\n(.*?)(?=\n## |$)"
    assert regex(text, pattern=pattern) == "Para one line.\nPara two line.\n"
    assert regex(text, pattern=r"## Risks\s*\n(.*?)(?=\n## |$)") == "Flood.\nFire."
    assert regex("line one\nline two", pattern=r"^line (\w+)$") is None


def test_mission_style_section_patterns_capture_whole_sections():
    plan = ("# Plan\n\n## Executive Summary\n\nFirst line.\nSecond line.\n\n## Supplies\n\n- water\n- food\n\n"
            "## Timeline\n\nDay 1: prepare.\nDay 2: check.\n")
    sections = regex(plan, patterns={
        "summary": r"## Executive Summary\s*\n(.*?)(?=\n## |$)",
        "supplies": r"## Supplies\s*\n(.*?)(?=\n## |$)",
        "timeline": r"## Timeline\s*\n(.*?)(?=\n## |$)",
        "budget": r"## Budget\s*\n(.*?)(?=\n## |$)",
    })
    assert sections == {"summary": "First line.\nSecond line.\n", "supplies": "- water\n- food\n",
                        "timeline": "Day 1: prepare.\nDay 2: check.", "budget": None}


@pytest.mark.parametrize("flags, expected", [
    ("MULTILINE", "two"),
    (["M"], "two"),
    ("I|M", "one"),
    ("multiline, ignorecase", "one"),
    (["IGNORECASE", "m"], "one"),
])
def test_flags_can_be_overridden(flags, expected):
    assert regex("LINE one\nline two", pattern=r"^line (\w+)$", flags=flags) == expected


def test_empty_flags_mean_no_flags():
    assert regex("a\nb", pattern=r"a.b") == "a\nb"
    assert regex("a\nb", pattern=r"a.b", flags="") is None
    assert regex("a\nb", pattern=r"a.b", flags=[]) is None


def test_unknown_flag_raises():
    with pytest.raises(TransformError, match="Unknown regex flag 'LOCALE'"):
        regex("a", pattern="a", flags="LOCALE")


def test_non_string_input_is_searched_as_json_text():
    # Fix §5.9: the old engine searched Python repr text (single quotes, None).
    assert regex({"status": "error", "code": 503}, pattern=r'"code": (\d+)') == "503"
    assert regex(None, pattern=r"null") == "null"
    assert regex([True, 2], pattern=r"\w+", all_matches=True) == ["true", "2"]


def test_invalid_pattern_raises():
    with pytest.raises(TransformError, match="regex_extract failed: 'pattern' is not a valid regular expression"):
        regex("x", pattern="(")


# ========================================================================================================== template
def template(data, template_text, variables=None, **extra):
    params = {"template": template_text, **extra}
    if variables is not None:
        params["variables"] = variables
    return run_transform("template", data, params)


def test_single_variable():
    # §10 case 49.
    assert template(None, "Hello, ${name}!", {"name": "Alice"}) == "Hello, Alice!"


def test_several_variables_including_an_int():
    assert template({}, "${name} is ${age} and lives in ${city}", {"name": "Bob", "age": 30, "city": "Oslo"}) == \
        "Bob is 30 and lives in Oslo"


def test_input_map_keys_are_variables():
    assert template({"name": "Cy", "role": "admin"}, "${name} (${role})") == "Cy (admin)"


def test_variables_override_input_keys():
    assert template({"name": "Cy", "role": "admin"}, "${name} (${role})", {"role": "guest"}) == "Cy (guest)"


def test_missing_variable_stays_verbatim():
    assert template({}, "Hello ${name}, ${unknown}! ${a.b} ${}", {"name": "Dee"}) == "Hello Dee, ${unknown}! ${a.b} ${}"


def test_list_input_renders_each_element():
    bundles = [{"id": "b1", "price": 19.99}, {"id": "b2", "price": 5}]
    assert template(bundles, "Bundle ${id}: $${price} (${currency})\n", {"currency": "USD"}) == \
        ["Bundle b1: $19.99 (USD)\n", "Bundle b2: $5 (USD)\n"]


def test_substitution_is_one_pass():
    # Binding decision (§5.10): text inserted for one key used to be re-substituted by a later key.
    assert template({}, "${a} and ${b}", {"a": "${b}", "b": "B"}) == "${b} and B"
    assert template({"b": "${a}"}, "${a}${b}", {"a": "A"}) == "A${a}"


def test_values_render_as_json_text_not_python_repr():
    # Binding decision (§5.10): lists of places used to be embedded as [{'name': 'X'}].
    variables = {"places": [{"name": "X", "open": True}], "none": None, "flag": False, "n": 2.5}
    assert template({}, "${places} ${none} ${flag} ${n}", variables) == \
        '[{"name": "X", "open": true}] null false 2.5'


def test_template_requires_a_template():
    with pytest.raises(TransformError, match="template failed: Missing 'template' in config"):
        run_transform("template", {}, {"variables": {}})
    with pytest.raises(TransformError, match="'variables' must be a map"):
        run_transform("template", {}, {"template": "x", "variables": "y"})
