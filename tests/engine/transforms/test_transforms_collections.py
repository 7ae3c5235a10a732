"""filter, map, join, sort, unique and merge (§10 cases 42-46 and 50, plus the deliberate fixes)."""
import copy

import pytest

from llm_service.engine.errors import TransformError
from llm_service.engine.transforms import run_transform

PEOPLE = [
    {"name": "Ann", "age": 25, "score": 85, "price": 10, "status": "active", "user": {"email": "ANN@x.org"}},
    {"name": "Ben", "age": 30, "score": 75, "price": 20, "status": "inactive", "user": {"email": "Ben@x.org"}},
    {"name": "Cid", "age": 25, "score": 90, "price": 30, "status": "active", "user": {"email": "cid@X.org"}},
]


def names(items):
    return [item["name"] for item in items]


# ============================================================================================================ filter
@pytest.mark.parametrize("condition, expected", [
    ("item.age == 25", ["Ann", "Cid"]),
    ("item.score > 80", ["Ann", "Cid"]),
    ("item.price <= 20", ["Ann", "Ben"]),
    ('item.status == "active"', ["Ann", "Cid"]),
    ("age != 25", ["Ben"]),                       # the item. prefix is optional
    ("item.status == 'inactive'", ["Ben"]),
    ("item.name in 'Ann Cid'", ["Ann", "Cid"]),
    ("item.name contains 'n'", ["Ann", "Ben"]),
    ("item.price < 10.5", ["Ann"]),
])
def test_filter_conditions(condition, expected):
    # §10 case 42 (first four) and the other operators.
    assert names(run_transform("filter", PEOPLE, {"condition": condition})) == expected


def test_filter_rejects_a_map_input():
    with pytest.raises(TransformError, match="^filter failed: Filter requires array input"):
        run_transform("filter", {"items": PEOPLE}, {"condition": "item.age == 25"})


def test_filter_with_array_path():
    result = run_transform("filter", {"items": PEOPLE}, {"condition": "item.age >= 30", "array_path": "items"})
    assert names(result) == ["Ben"]
    data = {"items": PEOPLE + [{"name": "Dee", "age": 41}]}
    assert names(run_transform("filter", data, {"condition": "item.age >= 30", "array_path": "items"})) == \
        ["Ben", "Dee"]


def test_filter_literals_bool_null_and_list_membership():
    data = [{"ok": True, "v": None, "tags": ["a", "b"]}, {"ok": False, "v": 1, "tags": ["c"]}]
    assert run_transform("filter", data, {"condition": "item.ok == TRUE"}) == data[:1]
    assert run_transform("filter", data, {"condition": "item.v == null"}) == data[:1]
    assert run_transform("filter", data, {"condition": "item.v != None"}) == data[1:]
    assert run_transform("filter", data, {"condition": "item.tags contains 'c'"}) == data[1:]


def test_filter_not_in_works():
    # Fix §5.4: ` in ` used to match first, leaving `x not` as the left side.
    assert names(run_transform("filter", PEOPLE, {"condition": "item.name not in 'Ann Cid'"})) == ["Ben"]
    tagged = [{"t": "x"}, {"t": "y"}]
    assert run_transform("filter", tagged, {"condition": "'y' not in item.t"}) == [{"t": "x"}]


def test_filter_ignores_operators_inside_quoted_literals():
    # Fix §5.4: the old engine split `name == "a >= b"` at `>=`.
    data = [{"label": "a >= b"}, {"label": "a"}, {"label": "x in y"}]
    assert run_transform("filter", data, {"condition": 'item.label == "a >= b"'}) == data[:1]
    assert run_transform("filter", data, {"condition": "item.label == 'x in y'"}) == data[2:]
    assert run_transform("filter", data, {"condition": "item.label != \"a\""}) == [data[0], data[2]]


def test_apostrophe_inside_a_word_is_not_a_quote():
    data = [{"n": "O'Brien", "owner's": "me"}, {"n": "Smith", "owner's": "you"}]
    assert run_transform("filter", data, {"condition": "item.n == \"O'Brien\""}) == data[:1]
    assert run_transform("filter", data, {"condition": "item.owner's == 'you'"}) == data[1:]


def test_filter_strips_only_a_leading_item_prefix():
    # Fix §5.4: `item.line_item.x` used to become `line_x`.
    data = [{"line_item": {"qty": 2}}, {"line_item": {"qty": 0}}]
    assert run_transform("filter", data, {"condition": "item.line_item.qty > 1"}) == data[:1]


def test_filter_item_alone_is_the_element():
    assert run_transform("filter", [1, 5, 3, 8], {"condition": "item >= 4"}) == [5, 8]
    assert run_transform("filter", [[1, 2], [3]], {"condition": "item[0] == 3"}) == [[3]]


def test_filter_mixed_type_comparison_raises_in_strict_mode():
    data = [{"age": 20}, {"age": "unknown"}, {"age": 40}]
    with pytest.raises(TransformError, match=r"filter failed: item 1: cannot evaluate a string > a number"):
        run_transform("filter", data, {"condition": "item.age > 30"})


def test_filter_drops_problem_elements_when_lenient():
    data = [{"age": 20}, {"age": "unknown"}, {"name": "no age"}, {"age": 40}]
    assert run_transform("filter", data, {"condition": "item.age > 30"}, lenient=True) == [{"age": 40}]


def test_filter_missing_field_raises_in_strict_mode():
    with pytest.raises(TransformError, match="item 0: Key 'age' not found in data"):
        run_transform("filter", [{"name": "x"}], {"condition": "item.age > 30"})


@pytest.mark.parametrize("condition", ["item.age", "== 3", "item.age >", "item.name == 'a"])
def test_invalid_conditions(condition):
    with pytest.raises(TransformError, match="Invalid condition"):
        run_transform("filter", PEOPLE, {"condition": condition})


# =============================================================================================================== map
def test_map_plain_path():
    assert run_transform("map", PEOPLE, {"expression": "item.name"}) == ["Ann", "Ben", "Cid"]


def test_map_upper_and_lower():
    assert run_transform("map", PEOPLE, {"expression": "item.name.upper()"}) == ["ANN", "BEN", "CID"]
    assert run_transform("map", PEOPLE, {"expression": "item.name.lower()"}) == ["ann", "ben", "cid"]


def test_map_nested_path():
    assert run_transform("map", PEOPLE, {"expression": "item.user.email.lower()"}) == \
        ["ann@x.org", "ben@x.org", "cid@x.org"]
    assert run_transform("map", PEOPLE, {"expression": "item.user.email"})[0] == "ANN@x.org"


def test_map_with_array_path():
    assert run_transform("map", {"people": PEOPLE}, {"expression": "item.age", "array_path": "people"}) == \
        [25, 30, 25]


def test_map_rejects_a_map_input():
    with pytest.raises(TransformError, match="^map failed: Map requires array input"):
        run_transform("map", {"a": 1}, {"expression": "item.a"})


def test_map_case_change_keeps_falsy_values():
    # Fix §5.5: "", 0 and null all used to become null.
    data = [{"n": ""}, {"n": None}, {"n": 0}, {"n": "x"}, {"n": 7}, {"n": True}]
    assert run_transform("map", data, {"expression": "item.n.upper()"}) == ["", None, 0, "X", "7", "TRUE"]


def test_map_item_alone_is_identity():
    # Fix §5.5: `item` used to look up a key named "item".
    assert run_transform("map", ["a", "B"], {"expression": "item.lower()"}) == ["a", "b"]
    assert run_transform("map", [1, 2], {"expression": "item"}) == [1, 2]


def test_map_missing_field_strict_raises_and_lenient_gives_null():
    data = [{"n": "a"}, {"m": "b"}]
    with pytest.raises(TransformError, match="item 1: Key 'n' not found"):
        run_transform("map", data, {"expression": "item.n"})
    assert run_transform("map", data, {"expression": "item.n.upper()"}, lenient=True) == ["A", None]


# ============================================================================================================== join
@pytest.mark.parametrize("data, params, expected", [
    (["apple", "banana", "cherry"], {}, "apple, banana, cherry"),
    (["apple", "banana", "cherry"], {"separator": " | "}, "apple | banana | cherry"),
    (["hello", "world"], {"separator": ""}, "helloworld"),
    ([1, 2, 3, 4, 5], {"separator": "-"}, "1-2-3-4-5"),
    (["a", None, "b", None, "c"], {}, "a, b, c"),
    ({"fruits": ["x", "y"]}, {"array_path": "fruits"}, "x, y"),
    ([], {}, ""),
])
def test_join(data, params, expected):
    # §10 case 44.
    assert run_transform("join", data, params) == expected


def test_join_rejects_a_string():
    with pytest.raises(TransformError, match="Join requires array input \\(got a string\\)"):
        run_transform("join", "abc", {})


def test_join_renders_non_strings_as_text_not_python_repr():
    # Fix §5.6: True and {'k': 'v'} used to appear in Python form.
    assert run_transform("join", [True, False, {"k": "v"}, [1, "a"], 1.5], {"separator": " "}) == \
        'true false {"k": "v"} [1, "a"] 1.5'


# ============================================================================================================== sort
def test_sort_numbers_and_strings():
    # §10 case 45.
    assert run_transform("sort", [3, 1, 2], {}) == [1, 2, 3]
    assert run_transform("sort", [3, 1, 2], {"reverse": True}) == [3, 2, 1]
    assert run_transform("sort", ["pear", "apple", "fig"], {}) == ["apple", "fig", "pear"]


def test_sort_by_key_nested_key_and_array_path():
    assert names(run_transform("sort", PEOPLE, {"key": "score"})) == ["Ben", "Ann", "Cid"]
    assert names(run_transform("sort", PEOPLE, {"key": "score", "reverse": True})) == ["Cid", "Ann", "Ben"]
    nested = [{"user": {"age": 40}, "n": 1}, {"user": {"age": 20}, "n": 2}]
    assert run_transform("sort", nested, {"key": "user.age"}) == nested[::-1]
    assert run_transform("sort", {"list": [2, 1]}, {"array_path": "list"}) == [1, 2]


def test_sort_is_stable_both_ways_and_returns_a_new_list():
    data = [{"a": 1, "i": 0}, {"a": 0, "i": 1}, {"a": 1, "i": 2}]
    assert [d["i"] for d in run_transform("sort", data, {"key": "a"})] == [1, 0, 2]
    assert [d["i"] for d in run_transform("sort", data, {"key": "a", "reverse": True})] == [0, 2, 1]
    original = [2, 1]
    assert run_transform("sort", original, {}) is not original and original == [2, 1]


def test_sort_mixed_types_and_missing_key_raise():
    with pytest.raises(TransformError, match="Cannot sort: the values are not mutually comparable"):
        run_transform("sort", [1, "a"], {})
    with pytest.raises(TransformError, match="item 1: Key 'age' not found"):
        run_transform("sort", [{"age": 1}, {}], {"key": "age"})


# ============================================================================================================ unique
def test_unique_scalars_keep_first_occurrence_in_order():
    # §10 case 46.
    assert run_transform("unique", [1, 2, 2, 3, 1, 4, 3, 5], {}) == [1, 2, 3, 4, 5]
    assert run_transform("unique", ["b", "a", "b", "c", "a"], {}) == ["b", "a", "c"]


def test_unique_by_key_and_nested_key():
    data = [{"id": 1, "v": "first"}, {"id": 2, "v": "x"}, {"id": 1, "v": "second"}]
    assert run_transform("unique", data, {"key": "id"}) == data[:2]
    nested = [{"u": {"id": 7}}, {"u": {"id": 8}}, {"u": {"id": 7}}]
    assert len(run_transform("unique", nested, {"key": "u.id"})) == 2


def test_unique_identical_maps_regardless_of_key_order():
    data = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 2}]
    assert run_transform("unique", data, {}) == [{"a": 1, "b": 2}, {"a": 2}]


def test_unique_booleans_are_not_numbers_but_one_equals_one_point_zero():
    # Fix §5.8: 1, 1.0 and True used to count as duplicates.
    assert run_transform("unique", [1, True, 1.0, 0, False, "1", None, None], {}) == [1, True, 0, False, "1", None]
    assert run_transform("unique", [[1, True], [1.0, True], [1, 1]], {}) == [[1, True], [1, 1]]


# ============================================================================================================= merge
def test_merge_shallow():
    # §10 case 50.
    data = {"a": {"x": 1, "b": 2}, "b": {"c": 3}}
    assert run_transform("merge", data, {"sources": ["a", "b"]}) == {"x": 1, "b": 2, "c": 3}


def test_merge_shallow_later_source_wins():
    data = {"a": {"a": 1, "b": 2}, "b": {"b": 99}}
    assert run_transform("merge", data, {"sources": ["a", "b"]}) == {"a": 1, "b": 99}


def test_merge_deep_keeps_nested_fields():
    data = {"one": {"user": {"name": "Ann", "age": 3}}, "two": {"user": {"email": "a@x"}}}
    merged = run_transform("merge", data, {"sources": ["one", "two"], "strategy": "deep"})
    assert merged == {"user": {"name": "Ann", "age": 3, "email": "a@x"}}
    shallow = run_transform("merge", data, {"sources": ["one", "two"]})
    assert shallow == {"user": {"email": "a@x"}}


def test_merge_deep_nested_override():
    data = {"base": {"settings": {"timeout": 30, "debug": False, "retries": 3}},
            "override": {"settings": {"timeout": 60, "debug": True}}}
    merged = run_transform("merge", data, {"sources": ["base", "override"], "strategy": "deep"})
    assert merged["settings"] == {"timeout": 60, "debug": True, "retries": 3}


def test_merge_three_sources_with_paths_into_the_input():
    data = {"s": {"a": {"output": {"x": 1}}, "b": {"output": {"y": 2}}}, "c": [{"z": 3}]}
    assert run_transform("merge", data, {"sources": ["s.a.output", "s.b.output", "c[0]"]}) == \
        {"x": 1, "y": 2, "z": 3}


def test_merge_skips_non_maps_and_fails_on_missing_paths(caplog):
    data = {"a": {"x": 1}, "b": [1, 2]}
    assert run_transform("merge", data, {"sources": ["a", "b"]}) == {"x": 1}
    assert "source 'b' is a list, not a map" in caplog.text
    with pytest.raises(TransformError, match="merge failed: source 'c': Key 'c' not found"):
        run_transform("merge", data, {"sources": ["a", "c"]})


def test_deep_merge_does_not_mutate_its_inputs():
    # Fix §5.12: the old deep merge wrote into the first source's nested maps.
    data = {"a": {"cfg": {"x": 1, "deep": {"k": [1]}}}, "b": {"cfg": {"y": 2, "deep": {"j": 2}}}}
    before = copy.deepcopy(data)
    merged = run_transform("merge", data, {"sources": ["a", "b"], "strategy": "deep"})
    assert merged == {"cfg": {"x": 1, "y": 2, "deep": {"k": [1], "j": 2}}}
    assert data == before
    merged["cfg"]["deep"]["k"].append(2)
    assert data == before
