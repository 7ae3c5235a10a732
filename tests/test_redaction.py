"""Secret values are scrubbed as whole tokens, and values too short to be secrets are never scrubbed."""
from __future__ import annotations

import json

import pytest

from llm_service.config import Config
from llm_service.redaction import (MIN_SECRET_LENGTH, REDACTED, redact_text, register_secrets, scrub_parsed_json,
                                   scrub_values)

KEY = "sbx-redaction-test-key-7f3a"


def test_a_registered_secret_is_scrubbed_where_it_stands_as_a_token():
    register_secrets([KEY])
    text = f'url ?q=1&k={KEY}&x=2 "{KEY}" Bearer-less {KEY}. (%3D{KEY})'
    assert redact_text(text) == (f'url ?q=1&k={REDACTED}&x=2 "{REDACTED}" Bearer-less {REDACTED}. '
                                 f'(%3D{REDACTED})')


def test_letters_that_merely_contain_a_secret_are_left_alone():
    register_secrets([KEY])
    assert redact_text(f"x{KEY}") == f"x{KEY}"
    assert redact_text(f"{KEY}9") == f"{KEY}9"
    assert scrub_values({"note": "the sandbox upstream"}, ["sandbox-not-a-word", "sandbox"]) == {
        "note": "the sandbox upstream"}


def test_secrets_glued_together_are_scrubbed_as_one_token():
    other = "sbx-redaction-other-key-9c1d"
    assert scrub_values([f"echo {KEY}{other}!"], [KEY, other]) == [f"echo {REDACTED}!"]


def test_values_shorter_than_the_floor_are_not_secrets():
    short = "s" * (MIN_SECRET_LENGTH - 1)
    assert scrub_values({"a": f"{short} and more"}, [short]) == {"a": f"{short} and more"}
    assert short not in Config(openrouter_api_key=short, weatherapi_api_key=KEY).secrets()
    assert KEY in Config(weatherapi_api_key=KEY).secrets()


def test_a_sandbox_run_does_not_read_as_a_leak():
    """The keys of the sandbox recipe are ordinary words in messages about the sandbox."""
    assert scrub_values({"summary": "Sandbox answer from the sandbox upstream"}, ["sandbox"]) == {
        "summary": "Sandbox answer from the sandbox upstream"}


@pytest.mark.parametrize("body", [
    '{"ok": true, "echo": "key=SECRETKEY123 used", "SECRETKEY123": [1, "x"]}'.encode(),
    '{"echo": "\\u0053ECRETKEY123"}'.encode(),  # an escape spells the secret: only the walk finds it
    '{"echo": "line\\nSECRETKEY123"}'.encode(),
    '{"echo": "SECRETKEY123"}'.encode("utf-16"),
    '\ufeff{"echo": "caf\u00e9 SECRETKEY123"}'.encode("utf-8"),
    '{"clean": "nothing to see", "n": [1, 2.5, null]}'.encode(),
])
def test_scrub_parsed_json_matches_scrub_values(body):
    data = json.loads(body)
    assert scrub_parsed_json(json.loads(body), body, ["SECRETKEY123", "short"]) == \
        scrub_values(data, ["SECRETKEY123", "short"])
    assert scrub_parsed_json(json.loads(body), body, []) == data
