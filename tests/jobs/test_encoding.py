"""The store's JSON: a shared encoding writes exactly what the plain encoder writes, whatever is shared or nested,
and refuses the same values."""
from __future__ import annotations

import json
import random

import pytest

from llm_service.jobs.encoding import SharedEncoding, decode, encode


def _value(rng: random.Random, depth: int, pool: list) -> object:
    """A random JSON-able value; some parts are objects already used elsewhere (``pool``), as step outputs are."""
    roll = rng.random()
    if pool and roll < 0.15:
        return rng.choice(pool)
    if depth <= 0 or roll < 0.45:
        return rng.choice([None, True, False, 0, -7, 2 ** 70, 1.5, -0.0, 1e300, "", "plain", "Zürich / 東京 \"q\" \\ \n",
                           "x" * 300, "\u2028\x00\x1f"])
    if roll < 0.75:
        value: object = {rng.choice(["a", "b", "output", "ü", "", "k" * 3]) + str(i): _value(rng, depth - 1, pool)
                         for i in range(rng.randint(0, 5))}
    elif roll < 0.95:
        value = [_value(rng, depth - 1, pool) for _ in range(rng.randint(0, 5))]
    else:
        value = (1, "t", {"in": "tuple"})
    pool.append(value)
    return value


def test_shared_encoding_writes_what_the_plain_encoder_writes():
    rng = random.Random(12)
    for _ in range(300):
        pool: list = []
        values = [_value(rng, rng.randint(0, 5), pool) for _ in range(4)]
        shared = SharedEncoding()
        for value in values:
            for depth in (rng.randint(0, 4), 3):  # a second time: from the memo
                assert shared.encode(value, depth) == encode(value)


def test_shared_parts_and_unusual_keys_and_types():
    output = {"content": "y" * 500, "items": [{"n": 1}, {"n": 2.25}]}
    entry = {"step_id": "s", "output": output}
    record = {"output": output, "success": True, **output, "alias": output["content"]}
    result = {"steps_executed": [dict(entry)], "output": {1: "int key", None: "null key", "f": 1.0}}
    shared = SharedEncoding()
    for value, depth in ((entry, 2), (record, 2), (result, 3), ([(1, 2)], 2), ({"t": ("a",)}, 1)):
        assert shared.encode(value, depth) == encode(value) == json.dumps(value, ensure_ascii=False,
                                                                            separators=(",", ":"))


@pytest.mark.parametrize("bad, error", [({"a": [float("nan")]}, ValueError), ({"a": {"b": object()}}, TypeError),
                                        ([{"inf": float("inf")}], ValueError)])
def test_values_json_cannot_hold_are_refused_alike(bad, error):
    with pytest.raises(error):
        encode(bad)
    with pytest.raises(error):
        SharedEncoding().encode(bad, 3)


def test_a_circular_value_is_refused():
    loop: dict = {"a": 1}
    loop["self"] = {"back": loop}
    with pytest.raises(ValueError):
        SharedEncoding().encode(loop, 3)


@pytest.mark.parametrize("text", ['{"a":[1,2.5,null,true],"b":"Zürich"}', '"x"', "0", "-1.5e3", "null", " 1 ", "1 ",
                                  " [] ", "NaN", '"\\u00e9\\ud83d\\ude00"'])
def test_decode_reads_what_json_loads_reads(text):
    assert repr(decode(text)) == repr(json.loads(text))  # repr: NaN is not equal to itself


@pytest.mark.parametrize("text", ["", " ", "1,2", "[1", '{"a":1}x', "\ufeff1", "tru", '"unterminated'])
def test_decode_refuses_what_json_loads_refuses(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        decode(text)
    assert str(got.value) == str(expected.value)
