from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from llm_service.sandbox.webhooks import standard_signature

BODY = json.dumps({"event": "workflow.completed", "job_id": "job-1", "status": "completed"},
                  separators=(",", ":"), sort_keys=True).encode()


def _legacy(secret, body=BODY):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _standard_headers(key: bytes, body=BODY, msg_id="msg_1", timestamp="1748779200"):
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def _post(http, sandbox, headers, body=BODY, name="client"):
    return http.post(f"{sandbox.url}/webhooks/{name}", data=body,
                     headers={"Content-Type": "application/json", **headers}, timeout=5)


def test_valid_legacy_signature_is_recorded_with_the_delivery(sandbox, http, secret):
    response = _post(http, sandbox, {"X-Webhook-Signature": _legacy(secret), "X-Webhook-Event": "workflow.completed"})

    assert response.status_code == 200 and response.json() == {"status": "success"}
    (delivery,) = sandbox.webhooks()
    assert delivery["signature_valid"] is True
    assert delivery["name"] == "client"
    assert delivery["event"] == "workflow.completed" and delivery["job_id"] == "job-1"
    assert delivery["body"] == BODY.decode() and delivery["json"]["status"] == "completed"
    assert delivery["headers"]["x-webhook-event"] == "workflow.completed"


@pytest.mark.parametrize("variant", ["wrong secret", "no prefix", "missing"])
def test_invalid_or_missing_legacy_signature_is_flagged(sandbox, http, secret, variant):
    header = {"wrong secret": _legacy("wrong-secret"), "no prefix": _legacy(secret)[len("sha256="):],
              "missing": None}[variant]
    _post(http, sandbox, {"X-Webhook-Signature": header} if header else {})

    assert sandbox.webhooks()[0]["signature_valid"] is False


def test_signature_is_checked_over_the_raw_bytes(sandbox, http, secret):
    spaced = json.dumps(json.loads(BODY)).encode()  # same JSON, different bytes

    _post(http, sandbox, {"X-Webhook-Signature": _legacy(secret)}, body=spaced)

    assert sandbox.webhooks()[0]["signature_valid"] is False


def test_standard_webhooks_signature_with_plain_secret(sandbox, http, secret):
    _post(http, sandbox, _standard_headers(secret.encode()))
    _post(http, sandbox, _standard_headers(b"other"))

    assert [d["standard_signature_valid"] for d in sandbox.webhooks()] == [True, False]


def test_standard_webhooks_signature_with_whsec_secret(sandbox, http):
    raw_key = b"\x01\x02binary-key\xff"
    sandbox.configure(webhook_secret="whsec_" + base64.b64encode(raw_key).decode())

    _post(http, sandbox, _standard_headers(raw_key))
    _post(http, sandbox, _standard_headers(b"whsec_" + base64.b64encode(raw_key)))

    assert [d["standard_signature_valid"] for d in sandbox.webhooks()] == [True, False]


def test_standard_signature_accepts_any_of_several_and_rejects_a_changed_id(sandbox, http, secret):
    headers = _standard_headers(secret.encode())
    headers["webhook-signature"] = "v1,bm90LWl0 " + headers["webhook-signature"]
    tampered = {**_standard_headers(secret.encode()), "webhook-id": "msg_2"}

    _post(http, sandbox, headers)
    _post(http, sandbox, tampered)

    assert [d["standard_signature_valid"] for d in sandbox.webhooks()] == [True, False]


def test_standard_signature_helper_matches_the_spec():
    expected = base64.b64encode(hmac.new(b"k", b"id.5.body", hashlib.sha256).digest()).decode()

    assert standard_signature("k", "id", "5", b"body") == expected


def test_configured_failure_status_is_returned_and_still_recorded(sandbox, http, secret):
    sandbox.configure(webhook_status=503)

    response = _post(http, sandbox, {"X-Webhook-Signature": _legacy(secret)})

    assert response.status_code == 503
    assert sandbox.webhooks()[0]["response_status"] == 503
    sandbox.reset()
    assert _post(http, sandbox, {}).status_code == 200


def test_without_a_secret_signatures_are_unchecked(sandbox, http, secret):
    sandbox.configure(webhook_secret=None)

    _post(http, sandbox, {"X-Webhook-Signature": _legacy(secret)})

    delivery = sandbox.webhooks()[0]
    assert delivery["signature_valid"] is None and delivery["standard_signature_valid"] is None


def test_admin_api_lists_and_filters_deliveries_and_sets_config(sandbox, http):
    config = http.post(f"{sandbox.url}/_sandbox/config", json={"webhook_status": 500, "webhook_secret": "s2"}).json()
    assert config == {"latency_ms": 0.0, "webhook_status": 500, "webhook_secret_configured": True}

    assert _post(http, sandbox, {"X-Webhook-Signature": _legacy("s2")}, name="a").status_code == 500
    _post(http, sandbox, {}, name="b")

    listed = http.get(f"{sandbox.url}/_sandbox/webhooks", params={"name": "a"}).json()["webhooks"]
    assert [(d["name"], d["signature_valid"]) for d in listed] == [("a", True)]
    assert len(http.get(f"{sandbox.url}/_sandbox/webhooks").json()["webhooks"]) == 2


def test_get_on_a_webhook_path_is_405(sandbox, http):
    assert http.get(f"{sandbox.url}/webhooks/x").status_code == 405
    assert sandbox.webhooks() == []
