"""Authentication: one constant-time decision, taken before anything else, with no oracle in the answer.

``tests/api/test_api_auth.py`` already covers the listed endpoints' 401 for a missing or wrong secret, near misses,
non-ASCII secrets, the 503 without a configured secret and the public endpoints. Here: every ``/api/v1`` route
found in the URL map (so a future route cannot forget the check), wrong secrets of equal and of different length
taking the same path and getting byte-identical answers, ``hmac.compare_digest`` being the only thing that decides,
secrets offered anywhere but ``X-API-Secret`` being ignored, unauthenticated requests not consuming the submit
limit or reaching the body parser, and the webhook signature checks being constant-time too.
"""
from __future__ import annotations

import uuid

import pytest

from llm_service.api import auth
from llm_service.webhooks import signing
from tests.api.support import envelope
from tests.security.conftest import API_SECRET

TRANSFORM_ONLY = {"name": "quick", "steps": [
    {"id": "t", "type": "transform", "config": {"operation": "template", "config": {"template": "hi"}}}]}
INVALID = envelope({"error": "InvalidAPISecret", "message": auth.INVALID_SECRET_MESSAGE})
WRONG_SECRETS = [
    "X" + API_SECRET[1:],                       # equal length, first byte differs
    API_SECRET[:-1] + "X",                      # equal length, last byte differs
    "x" * len(API_SECRET),                      # equal length, nothing in common
    API_SECRET[:-1] + "\u00e9",                 # equal length in characters, not in bytes
    API_SECRET[:10],                            # a prefix
    API_SECRET + "0",                           # a suffix added
    API_SECRET * 2,                             # longer
    "x" * 8192,                                 # much longer
    "",                                         # empty
    " " + API_SECRET,                           # leading space (the header value is taken as sent)
]


@pytest.fixture
def stack(make_stack):
    return make_stack([TRANSFORM_ONLY])


@pytest.fixture
def digest_calls(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    return calls


def _api_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", str(uuid.uuid4()))
        routes += [(method, path) for method in sorted(rule.methods - {"OPTIONS"})]
    return routes


def test_every_api_route_in_the_url_map_needs_the_secret(stack):
    routes = _api_routes(stack.app)
    assert {method for method, _ in routes} >= {"GET", "HEAD", "POST", "DELETE"} and len(routes) >= 12
    for method, path in routes:
        for headers in ({}, {"X-API-Secret": "wrong"}):
            response = stack.client.open(path, method=method, headers=headers, json={"workflow_name": "quick"})
            assert response.status_code == 401, (method, path)
            if method != "HEAD":
                assert response.get_json() == INVALID, (method, path)


@pytest.mark.parametrize("wrong", WRONG_SECRETS)
def test_wrong_secrets_of_any_length_take_one_comparison_and_get_the_same_answer(stack, digest_calls, wrong):
    missing = stack.client.get("/api/v1/jobs")
    digest_calls.clear()

    response = stack.client.get("/api/v1/jobs", headers={"X-API-Secret": wrong})

    assert response.status_code == 401
    assert response.get_data() == missing.get_data()
    assert sorted(response.headers.items()) == sorted(missing.headers.items())
    # WSGI hands header values over as latin-1 text; the comparison is on the bytes that were sent.
    assert digest_calls == [(wrong.encode("latin-1"), API_SECRET.encode("utf-8"))]


def test_compare_digest_alone_decides(stack, monkeypatch):
    """No length check, ``==`` or shortcut runs before or instead of the constant-time comparison."""
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: False)
    assert stack.get("/api/v1/jobs").status_code == 401
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: True)
    for wrong in ("", "x", "y" * 500):
        assert stack.client.get("/api/v1/jobs", headers={"X-API-Secret": wrong}).status_code == 200


@pytest.mark.parametrize("where", [
    {"query_string": {"X-API-Secret": API_SECRET}},
    {"query_string": {"api_secret": API_SECRET}},
    {"headers": {"Authorization": f"Bearer {API_SECRET}"}},
    {"headers": {"X-API-Key": API_SECRET}},
    {"headers": {"Cookie": f"X-API-Secret={API_SECRET}"}},
    {"headers": {"X-API-Secret-Override": API_SECRET}},
])
def test_the_secret_is_only_read_from_its_header(stack, where):
    assert stack.client.get("/api/v1/jobs", **where).status_code == 401


def test_unauthenticated_requests_neither_parse_the_body_nor_use_up_the_submit_limit(make_stack, monkeypatch):
    stack = make_stack([TRANSFORM_ONLY], submit_rate_limit=1)
    from llm_service.api import endpoints

    parsed = []
    real = endpoints.read_json_body
    monkeypatch.setattr(endpoints, "read_json_body", lambda: parsed.append(1) or real())
    for _ in range(5):
        response = stack.client.post("/api/v1/workflow", headers={"X-API-Secret": "wrong"},
                                     json={"workflow_name": "quick", "input_data": {}})
        assert response.status_code == 401
    assert parsed == []
    assert stack.post("/api/v1/workflow", json={"workflow_name": "quick", "input_data": {}}).status_code == 202
    assert stack.post("/api/v1/workflow", json={"workflow_name": "quick", "input_data": {}}).status_code == 429


def test_preflight_and_automatic_options_reveal_no_data_without_the_secret(stack):
    job_id = stack.submit("quick", {})
    for headers in ({}, {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}):
        for path in ("/api/v1/jobs", f"/api/v1/status/{job_id}", f"/api/v1/jobs/{job_id}"):
            response = stack.client.options(path, headers=headers)
            assert response.status_code in (200, 204)
            assert response.get_data() == b""
            assert job_id not in str(response.headers)


@pytest.mark.parametrize("verify, make", [
    (lambda secret, body, sig: signing.verify_legacy(secret, body, sig),
     lambda secret, body: signing.legacy_signature(secret, body)),
    (lambda secret, body, sig: signing.verify_standard(secret, {"webhook-id": "msg_1", "webhook-timestamp": "100",
                                                                "webhook-signature": sig}, body, now=100),
     lambda secret, body: signing.standard_signature(secret, "msg_1", 100, body)),
])
def test_webhook_signature_checks_are_constant_time(monkeypatch, verify, make):
    calls = []
    real = signing.hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    body, secret = b'{"event":"workflow.completed"}', "whsec-verify-0123456789"
    good = make(secret, body)
    assert verify(secret, body, good) is True
    for wrong in (good[:-1] + ("0" if good[-1] != "0" else "1"), good[:-4], good + "00", good[:3] + good[3:].upper()):
        assert verify(secret, body, wrong) is False
    assert len(calls) == 5
