"""Body serialisation and both signature schemes, checked against independently computed HMACs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from llm_service.webhooks.signing import (canonical_body, legacy_signature, signed_headers, standard_signature,
                                          verify_legacy, verify_standard)


def test_golden_vector():
    body = canonical_body({"b": 1, "a": "x"})
    assert body == b'{"a":"x","b":1}'
    expected = hmac.new(b"s3cret-value", b'{"a":"x","b":1}', hashlib.sha256).hexdigest()
    assert legacy_signature("s3cret-value", body) == "sha256=" + expected


def test_body_is_sorted_recursively_compact_and_ascii_escaped():
    body = canonical_body({"z": {"y": [1, {"b": 2, "a": 1}], "x": None}, "city": "Zürich", "ok": True})
    assert body == b'{"city":"Z\\u00fcrich","ok":true,"z":{"x":null,"y":[1,{"a":1,"b":2}]}}'
    assert b": " not in body and b", " not in body
    assert json.loads(body)["city"] == "Zürich"


def test_legacy_signature_strips_the_secret():
    body = b'{"a":1}'
    assert legacy_signature("  s3cret-value\n", body) == legacy_signature("s3cret-value", body)


def test_legacy_verifies_and_rejects_tampering():
    body = canonical_body({"event": "workflow.completed", "job_id": "j1"})
    header = legacy_signature("shared", body)
    assert verify_legacy("shared", body, header)
    assert not verify_legacy("shared", body.replace(b"j1", b"j2"), header)
    assert not verify_legacy("other", body, header)
    assert not verify_legacy("shared", body, header[len("sha256="):])  # prefix required
    assert not verify_legacy("shared", body, None)
    assert not verify_legacy("shared", body, "sha256=ünïcode")


def test_standard_signature_matches_the_spec_for_plain_secrets():
    body = b'{"a":"x"}'
    expected = base64.b64encode(
        hmac.new(b"s3cret-value", b"msg_1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert standard_signature(" s3cret-value ", "msg_1", 1700000000, body) == "v1," + expected


def test_standard_signature_decodes_whsec_secrets():
    raw_key = b"\x00\x01binary-key\xff"
    secret = "whsec_" + base64.b64encode(raw_key).decode()
    body = b"{}"
    expected = base64.b64encode(hmac.new(raw_key, b"id.42." + body, hashlib.sha256).digest()).decode()
    assert standard_signature(secret, "id", 42, body) == "v1," + expected


def test_whsec_prefix_with_invalid_base64_falls_back_to_the_text_key():
    body = b"{}"
    expected = base64.b64encode(hmac.new(b"whsec_not base64!", b"id.42." + body, hashlib.sha256).digest())
    assert standard_signature("whsec_not base64!", "id", 42, body) == "v1," + expected.decode()


def _standard_headers(secret: str, body: bytes, timestamp: int) -> dict:
    return signed_headers(secret=secret, body=body, event="workflow.completed", msg_id="msg_j1_workflow.completed",
                          timestamp=timestamp, user_agent="UA/1")


def test_standard_verifies_and_rejects_tampering_and_stale_timestamps():
    body = canonical_body({"job_id": "j1"})
    headers = _standard_headers("shared", body, 1_700_000_000)
    assert verify_standard("shared", headers, body, now=1_700_000_100)
    assert not verify_standard("shared", headers, body.replace(b"j1", b"j2"), now=1_700_000_100)
    assert not verify_standard("other", headers, body, now=1_700_000_100)
    assert not verify_standard("shared", headers, body, now=1_700_000_000 + 301)
    assert not verify_standard("shared", headers, body, now=1_700_000_000 - 301)
    assert not verify_standard("shared", {**headers, "webhook-timestamp": "soon"}, body, now=1_700_000_000)
    assert not verify_standard("shared", {**headers, "webhook-id": "msg_other"}, body, now=1_700_000_000)


def test_standard_accepts_any_listed_signature_and_any_header_case():
    body = b"{}"
    headers = _standard_headers("new-secret", body, 1000)
    rotated = {k.upper(): v for k, v in headers.items()}
    rotated["WEBHOOK-SIGNATURE"] = "v1,AAAA " + headers["webhook-signature"]
    assert verify_standard("new-secret", rotated, body, now=1000)


def test_signed_headers_carry_both_schemes():
    body = canonical_body({"b": 1, "a": "x"})
    headers = _standard_headers("s3cret-value", body, 1234)
    assert set(headers) == {"Content-Type", "X-Webhook-Signature", "X-Webhook-Event", "webhook-id",
                            "webhook-timestamp", "webhook-signature", "User-Agent"}
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Event"] == "workflow.completed"
    assert headers["webhook-timestamp"] == "1234"
    assert headers["User-Agent"] == "UA/1"
    assert verify_legacy("s3cret-value", body, headers["X-Webhook-Signature"])
    assert verify_standard("s3cret-value", headers, body, now=1234)


def test_empty_secrets_never_sign_or_verify():
    with pytest.raises(ValueError):
        legacy_signature("  ", b"{}")
    with pytest.raises(ValueError):
        standard_signature("", "id", 1, b"{}")
    forged = "sha256=" + hmac.new(b"", b"{}", hashlib.sha256).hexdigest()
    assert not verify_legacy("", b"{}", forged)
    assert not verify_standard("", {"webhook-id": "i", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
                               b"{}", now=1)
