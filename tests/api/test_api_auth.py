"""X-API-Secret: who needs it, how it is compared, what a failure looks like, and that it never leaks."""
from __future__ import annotations

import logging
import uuid

import pytest

from llm_service.api import auth
from tests.api.support import envelope, AUTH, SECRET

INVALID = envelope({"error": "InvalidAPISecret",
                    "message": "Invalid or missing API secret. Include X-API-Secret header with valid secret."})
JOB = str(uuid.uuid4())
PROTECTED = [
    ("post", "/api/v1/workflow"), ("post", "/api/v1/workflow/validate"), ("get", "/api/v1/workflows"),
    ("get", f"/api/v1/status/{JOB}"), ("get", "/api/v1/jobs"), ("get", f"/api/v1/jobs/{JOB}"),
    ("post", f"/api/v1/jobs/{JOB}/cancel"), ("get", f"/api/v1/jobs/{JOB}/webhooks"), ("delete", "/api/v1/jobs/bulk"),
]


@pytest.mark.parametrize("method, path", PROTECTED)
def test_missing_secret_is_401(api, method, path):
    response = getattr(api.client, method)(path, json={})
    assert response.status_code == 401
    assert response.get_json() == INVALID


@pytest.mark.parametrize("method, path", PROTECTED)
def test_wrong_secret_is_401(api, method, path):
    response = getattr(api.client, method)(path, json={}, headers={"X-API-Secret": SECRET + "x"})
    assert response.status_code == 401
    assert response.get_json() == INVALID


@pytest.mark.parametrize("value", ["", " ", SECRET[:-1], SECRET.upper(), "Ünïcödé-sécret"])
def test_near_misses_are_refused(api, value):
    assert api.client.get("/api/v1/jobs", headers={"X-API-Secret": value}).status_code == 401


def test_right_secret_passes_and_the_header_name_is_case_insensitive(api):
    assert api.client.get("/api/v1/jobs", headers=AUTH).status_code == 200
    assert api.client.get("/api/v1/jobs", headers={"x-api-secret": SECRET}).status_code == 200
    assert api.client.get("/api/v1/jobs", headers={"X-API-SECRET": SECRET}).status_code == 200


def test_a_non_ascii_secret_matches_its_utf8_bytes(make_api):
    secret = "pässwörd-秘密-0123"
    api = make_api(api_secret=secret)
    raw = secret.encode("utf-8").decode("latin-1")  # what a WSGI server hands over for UTF-8 header bytes
    assert api.client.get("/api/v1/jobs", headers={"X-API-Secret": raw}).status_code == 200
    assert api.client.get("/api/v1/jobs", headers={"X-API-Secret": "pässwörd"}).status_code == 401


def test_wrong_secret_wins_over_a_bad_body(api):
    for data in (b"{", b"[]", b'{"workflow_name": 1}'):
        response = api.client.post("/api/v1/workflow", data=data, content_type="application/json",
                                   headers={"X-API-Secret": "nope"})
        assert response.status_code == 401
    response = api.client.get("/api/v1/jobs?limit=0&status=bogus")
    assert response.status_code == 401


def test_the_comparison_is_constant_time_on_bytes(api, monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert api.client.get("/api/v1/jobs", headers={"X-API-Secret": "wrong"}).status_code == 401
    assert api.client.get("/api/v1/jobs").status_code == 401
    assert api.client.get("/api/v1/jobs", headers=AUTH).status_code == 200
    assert calls == [(b"wrong", SECRET.encode()), (b"", SECRET.encode()), (SECRET.encode(), SECRET.encode())]


def test_without_a_configured_secret_protected_endpoints_are_503(make_api):
    api = make_api(api_secret="")
    response = api.client.get("/api/v1/jobs", headers={"X-API-Secret": ""})
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert detail["error"] == "AuthNotConfigured" and "LLM_API_SECRET" in detail["message"]
    assert api.client.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/", "/health", "/openapi.json", "/docs"])
def test_public_endpoints_need_no_secret(api, path):
    assert api.client.get(path).status_code == 200


def test_the_secret_never_appears_in_responses_or_logs(make_api, caplog):
    api = make_api(submit_rate_limit=1)
    with caplog.at_level(logging.DEBUG):
        bodies = [
            api.client.get("/").data, api.client.get("/health").data, api.client.get("/openapi.json").data,
            api.client.get("/docs").data, api.client.get("/api/v1/jobs", headers={"X-API-Secret": "bad"}).data,
            api.post("/api/v1/workflow", json={"workflow_name": "greeting", "input_data": {}}).data,
            api.post("/api/v1/workflow", json={"workflow_name": "greeting", "input_data": {}}).data,
            api.get("/api/v1/jobs?user_id=nope").data,
        ]
    assert all(SECRET.encode() not in body for body in bodies)
    dumped = " ".join(repr(vars(record)) for record in caplog.records)
    assert SECRET not in dumped and SECRET[:10] not in dumped
    assert auth.api_key_id(SECRET) != SECRET and SECRET not in auth.api_key_id(SECRET)
