"""extract_fields and the §5.2 extraction path (§10 case 41, plus the wildcard / negative index / source fixes)."""
import pytest

from llm_service.engine.errors import TransformError
from llm_service.engine.transforms import run_transform

DATA = {
    "name": "Alice",
    "age": 30,
    "user": {"name": "Bob", "age": 25, "email": "bob@example.com"},
    "items": [{"id": 1, "name": "pen"}, {"id": 2, "name": "ink"}, {"id": 3, "name": "pad"}],
}


def extract(paths, data=DATA, **params):
    return run_transform("extract_fields", data, {"paths": paths, **params})


# -- §10 case 41 ----------------------------------------------------------------------------------------------------
def test_top_level_fields():
    assert extract({"name": "name", "age": "age"}) == {"name": "Alice", "age": 30}


def test_nested_field():
    assert extract({"email": "user.email"}) == {"email": "bob@example.com"}


def test_index_then_key():
    assert extract({"second": "items[1].id"}) == {"second": 2}
    assert extract({"second": "items.1.id"}) == {"second": 2}


def test_wildcard_alone_returns_the_list():
    assert extract({"all": "items[*]"}) == {"all": DATA["items"]}


def test_missing_path_fails_in_strict_mode():
    with pytest.raises(TransformError) as info:
        extract({"x": "user.phone"})
    assert str(info.value) == "extract_fields failed: Failed to extract 'user.phone': Key 'phone' not found in data"


def test_missing_path_gives_null_for_that_field_when_lenient():
    result = run_transform("extract_fields", DATA, {"paths": {"x": "user.phone", "n": "name"}}, lenient=True)
    assert result == {"x": None, "n": "Alice"}


def test_source_names_a_key_of_the_input_on_direct_calls():
    assert extract({"name": "name", "age": "age"}, source="user") == {"name": "Bob", "age": 25}


# -- fixes ----------------------------------------------------------------------------------------------------------
def test_wildcard_maps_the_rest_of_the_path():
    # Fix §5.2: the old engine returned `items` and ignored `.name`.
    assert extract({"names": "items[*].name"}) == {"names": ["pen", "ink", "pad"]}
    nested = {"groups": [{"members": [{"n": 1}, {"n": 2}]}, {"members": [{"n": 3}]}]}
    assert extract({"n": "groups[*].members[*].n"}, data=nested) == {"n": [[1, 2], [3]]}


def test_negative_indexes_count_from_the_end():
    # Fix §5.2: `-1` used to be looked up as a key and fail.
    assert extract({"last": "items[-1].name", "first": "items.-3.id"}) == {"last": "pad", "first": 1}


def test_numeric_piece_on_a_map_is_a_key():
    assert extract({"y": "by_year.2024"}, data={"by_year": {"2024": "ok"}}) == {"y": "ok"}


@pytest.mark.parametrize("path, reason", [
    ("name[*]", "Cannot use wildcard on non-array (a string)"),
    ("name[0]", "Cannot index non-array (a string) with [0]"),
    ("items[5]", "Index 5 out of range for a list of 3"),
    ("items.name", "Cannot access key 'name' on a list"),
    ("items[*].colour", "Key 'colour' not found in data"),
])
def test_path_errors_say_what_went_wrong(path, reason):
    with pytest.raises(TransformError) as info:
        extract({"x": path})
    assert str(info.value) == f"extract_fields failed: Failed to extract '{path}': {reason}"


def test_empty_path_is_the_data_itself_and_no_paths_give_an_empty_map():
    assert extract({"all": ""}, data=[1, 2]) == {"all": [1, 2]}
    assert run_transform("extract_fields", DATA, {}) == {}


def test_a_missing_source_key_fails_even_when_lenient():
    with pytest.raises(TransformError, match="source 'account': Key 'account' not found"):
        run_transform("extract_fields", DATA, {"paths": {"n": "name"}, "source": "account"}, lenient=True)


def test_source_that_is_not_a_key_is_ignored():
    # Fix §5.1: through a workflow the step layer has already replaced the input with the source *value*.
    assert extract({"n": "name"}, data={"name": "Carol"}, source={"name": "Carol"}) == {"n": "Carol"}
    assert extract({"n": "[0]"}, data=["x"], source="elsewhere") == {"n": "x"}
