"""POST /api/v1/workflow: validation, webhook URL checks, definition errors, the store/queue hand-off and outages,
and the per-key submission limit."""
from __future__ import annotations

import json
import logging
import socket
import uuid

import pytest

from tests.api.support import envelope, HOOK, SECRET


def submit(api, **fields):
    body = {"workflow_name": "greeting", "input_data": {"person": "Ann"}, **fields}
    return api.post("/api/v1/workflow", json=body)


def issue_locs(response) -> list[list]:
    return [issue["loc"] for issue in response.get_json()["detail"]["errors"]]


# ---------------------------------------------------------------------------------------------------- success

def test_submit_creates_a_queued_record_and_publishes_it(api):
    user = str(uuid.uuid4())
    response = submit(api, user_id=user, priority=5, username="ann", action="plan", debug_mode=True,
                      webhook_url=HOOK, webhook_secret="test_secret_123")
    assert response.status_code == 202
    body = response.get_json()
    assert list(body) == ["job_id", "celery_task_id", "status", "created_at", "estimated_wait_seconds", "status_url"]
    job_id = body["job_id"]
    assert str(uuid.UUID(job_id)) == job_id
    assert body["celery_task_id"] == job_id
    assert body["status"] == "queued" and body["estimated_wait_seconds"] is None
    assert body["status_url"] == f"/api/v1/status/{job_id}"
    assert response.headers["Location"] == body["status_url"]

    record = api.store.get(job_id)
    assert record["status"] == "queued" and body["created_at"] == record["created_at"]
    assert record["workflow_name"] == "greeting" and record["workflow_version"] == "1.2.0"
    assert record["input_data"] == {"person": "Ann"}
    assert (record["user_id"], record["username"], record["action"]) == (user, "ann", "plan")
    assert record["priority"] == 5 and record["debug_mode"] is True
    assert record["webhook_url"] == HOOK and record["webhook_secret"] == "test_secret_123"
    assert api.queue.enqueued == [(job_id, 5)]


def test_reference_case_emergency_style_submit_with_defaults(api):
    """12.1 #1 adapted: random user, formData input, priority 0, no webhook at all (now optional)."""
    response = submit(api, user_id=str(uuid.uuid4()), input_data={"formData": {"city": "Seattle"}}, priority=0)
    assert response.status_code == 202
    record = api.store.get(response.get_json()["job_id"])
    assert record["webhook_url"] is None and record["webhook_secret"] is None
    assert record["priority"] == 0 and record["debug_mode"] is False


def test_the_old_emergency_contacts_workflow_is_accepted_unmodified(make_api, original_fixture):
    """12.1 #1 with the old service's own definition file."""
    api = make_api(workflows_dir=str(original_fixture))
    response = submit(api, workflow_name="emergency_contacts", user_id=str(uuid.uuid4()), priority=0,
                      input_data={"formData": {"location": {"city": "Seattle"}}})
    assert response.status_code == 202
    record = api.store.get(response.get_json()["job_id"])
    assert record["workflow_name"] == "emergency_contacts" and record["workflow_version"] == "2.0.0"


def test_webhook_without_secret_is_accepted(api):
    """12.1 #4: the old test expected 422, but the secret is optional."""
    response = submit(api, webhook_url="https://example.com/webhook")
    assert response.status_code == 202


@pytest.mark.parametrize("given, stored", [
    ("https://Example.COM", "https://example.com/"),
    ("HTTP://example.com:80/a/b?x=1#frag", "http://example.com/a/b?x=1#frag"),
    ("https://example.com:8443/hook", "https://example.com:8443/hook"),
    ("https://bücher.example/ü", "https://xn--bcher-kva.example/%C3%BC"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://[::FFFF:127.0.0.1]/x", "http://[::ffff:7f00:1]/x"),
])
def test_webhook_url_is_stored_normalised(api, given, stored):
    response = submit(api, webhook_url=given)
    assert response.status_code == 202, response.get_json()
    assert api.store.get(response.get_json()["job_id"])["webhook_url"] == stored


def test_unknown_body_fields_are_ignored(api):
    response = submit(api, surprise={"x": 1}, another=[1, 2])
    assert response.status_code == 202
    record = api.store.get(response.get_json()["job_id"])
    assert "surprise" not in record and record["input_data"] == {"person": "Ann"}


@pytest.mark.parametrize("given, expected", [("5", 5), (5.0, 5), (10, 10), ("0", 0)])
def test_priority_is_coerced_laxly(api, given, expected):
    response = submit(api, priority=given)
    assert response.status_code == 202
    assert api.queue.enqueued[-1][1] == expected


@pytest.mark.parametrize("given, expected", [("yes", True), ("on", True), (1, True), ("false", False), (0, False)])
def test_debug_mode_is_a_lax_boolean(api, given, expected):
    response = submit(api, debug_mode=given)
    assert response.status_code == 202
    assert api.store.get(response.get_json()["job_id"])["debug_mode"] is expected


def test_user_id_is_stored_canonical_and_empty_means_none(api):
    user = uuid.uuid4()
    upper = submit(api, user_id=str(user).upper())
    assert api.store.get(upper.get_json()["job_id"])["user_id"] == str(user)
    braces = submit(api, user_id="{" + user.hex + "}")
    assert api.store.get(braces.get_json()["job_id"])["user_id"] == str(user)
    empty = submit(api, user_id="")
    assert api.store.get(empty.get_json()["job_id"])["user_id"] is None


# ---------------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("fields, loc, words", [
    ({"workflow_name": None}, ["body", "workflow_name"], "may not be null"),
    ({"workflow_name": ""}, ["body", "workflow_name"], "Length must be between 1 and 100"),
    ({"workflow_name": "a" * 101}, ["body", "workflow_name"], "Length must be between 1 and 100"),
    ({"workflow_name": "../../etc/passwd"}, ["body", "workflow_name"], "only alphanumeric characters"),
    ({"workflow_name": "_-_"}, ["body", "workflow_name"], "only alphanumeric characters"),
    ({"workflow_name": "two words"}, ["body", "workflow_name"], "only alphanumeric characters"),
    ({"workflow_name": 42}, ["body", "workflow_name"], "Not a valid string"),
    ({"input_data": [1, 2]}, ["body", "input_data"], "Must be a JSON object"),
    ({"input_data": "text"}, ["body", "input_data"], "Must be a JSON object"),
    ({"input_data": None}, ["body", "input_data"], "may not be null"),
    ({"priority": 5.5}, ["body", "priority"], "whole number"),
    ({"priority": 11}, ["body", "priority"], "less than or equal to 10"),
    ({"priority": -1}, ["body", "priority"], "greater than or equal to 0"),
    ({"priority": True}, ["body", "priority"], "Not a valid integer"),
    ({"priority": "high"}, ["body", "priority"], "Not a valid integer"),
    ({"priority": 10 ** 40}, ["body", "priority"], "less than or equal to 10"),
    ({"priority": "1e999"}, ["body", "priority"], "whole number"),
    ({"debug_mode": "maybe"}, ["body", "debug_mode"], "Not a valid boolean"),
    ({"user_id": "not-a-uuid"}, ["body", "user_id"], "Must be a UUID"),
    ({"user_id": 7}, ["body", "user_id"], "Not a valid string"),
    ({"webhook_url": "ftp://example.com/x"}, ["body", "webhook_url"], "http:// or https://"),
    ({"webhook_url": "not a url"}, ["body", "webhook_url"], "Not a valid http(s) URL"),
    ({"webhook_url": "https:///path-only"}, ["body", "webhook_url"], "must include a host"),
    ({"webhook_url": "https://example.com:99999/"}, ["body", "webhook_url"], "cannot be parsed"),
    ({"webhook_url": "https://example.com/" + "a" * 2070}, ["body", "webhook_url"], "longer than 2083"),
    ({"webhook_secret": "short"}, ["body", "webhook_secret"], "Length must be between 8 and 255"),
    ({"webhook_secret": "s" * 256}, ["body", "webhook_secret"], "Length must be between 8 and 255"),
    ({"username": "u" * 256}, ["body", "username"], "Longer than maximum length 255"),
    ({"action": "a" * 256}, ["body", "action"], "Longer than maximum length 255"),
])
def test_invalid_fields_are_422_naming_the_field(api, fields, loc, words):
    response = submit(api, **fields)
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail["error"] == "ValidationError"
    assert loc in issue_locs(response)
    field_name = loc[-1]
    assert detail["message"].startswith(f"{field_name}: ")
    assert words in detail["message"]
    assert api.queue.enqueued == [] and api.job_keys() == []


def test_missing_required_fields_are_all_reported(api):
    response = api.post("/api/v1/workflow", json={"priority": 1})
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert issue_locs(response) == [["body", "workflow_name"], ["body", "input_data"]]
    assert {issue["type"] for issue in detail["errors"]} == {"missing"}
    assert detail["message"] == ("workflow_name: Missing data for required field.; "
                                 "input_data: Missing data for required field.")


@pytest.mark.parametrize("payload, kind", [([], "array"), ("text", "string"), (3, "number"), (None, "null")])
def test_a_body_that_is_not_an_object_is_422_naming_the_body(api, payload, kind):
    response = api.post("/api/v1/workflow", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail["errors"] == [{"loc": ["body"], "type": "type_error",
                                 "msg": f"The request body must be a JSON object, got {kind}."}]
    assert detail["message"].startswith("body: ")


def test_an_empty_body_is_422(api):
    response = api.post("/api/v1/workflow", data=b"", content_type="application/json")
    assert response.status_code == 422
    assert issue_locs(response) == [["body"]]


@pytest.mark.parametrize("raw", [
    b"{", b"{'single': 'quotes'}", b'{"a": 1,}', b"\xff\xfe\x00garbage",
    b'{"workflow_name": "greeting", "input_data": {"x": NaN}}',
    b'{"workflow_name": "greeting", "input_data": {"x": 1e999}}',
    b'{"workflow_name": "greeting", "input_data": {"x": ' + b"9" * 5000 + b"}}",
    b'{"workflow_name": "greeting", "input_data": {"x": "\\ud800"}}',
    b'{"workflow_name": "greeting", "input_data": ' + b'{"a": ' * 150 + b"1" + b"}" * 150 + b"}",
    b'{"workflow_name": "greeting", "input_data": ' + b"[" * 100000 + b"]" * 100000 + b"}",
])
def test_malformed_json_is_400_invalid_json(api, raw):
    response = api.post("/api/v1/workflow", data=raw, content_type="application/json")
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert detail["error"] == "InvalidJSON"
    assert detail["message"].startswith("Malformed JSON body: ")
    assert api.job_keys() == []


def test_deep_but_reasonable_nesting_and_unicode_are_accepted(api):
    nested: dict = {"leaf": "東京 🚀 \u0000"}
    for _ in range(60):
        nested = {"n": nested}
    response = submit(api, input_data=nested, username="Zoë 🙂")
    assert response.status_code == 202
    record = api.store.get(response.get_json()["job_id"])
    assert record["input_data"] == nested and record["username"] == "Zoë 🙂"


def test_the_body_is_read_whatever_the_content_type(api):
    body = json.dumps({"workflow_name": "greeting", "input_data": {}})
    response = api.post("/api/v1/workflow", data=body, content_type="text/plain")
    assert response.status_code == 202


# ---------------------------------------------------------------------------------------------------- webhook URL

@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1/x", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
    ("http://10.1.2.3/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://0x7f.1/", "loopback"),
])
def test_webhook_urls_to_private_addresses_are_400(make_api, url, words):
    api = make_api(webhook_allow_private_networks=False)
    response = submit(api, webhook_url=url)
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert detail["error"] == "InvalidWebhookURL"
    assert detail["message"].startswith("webhook_url host ")
    assert words in detail["message"] and "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in detail["message"]
    assert api.queue.enqueued == [] and api.job_keys() == []


def test_private_webhook_urls_are_allowed_when_configured(make_api):
    api = make_api(webhook_allow_private_networks=True)
    for url in ("http://127.0.0.1/x", "http://2130706433/", "http://[::ffff:127.0.0.1]/"):
        assert submit(api, webhook_url=url).status_code == 202
    assert len(api.queue.enqueued) == 3


def test_a_host_name_resolving_to_a_private_address_is_refused(make_api, monkeypatch):
    import llm_service.http.ssrf as ssrf

    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "hooks.internal.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake_getaddrinfo)
    api = make_api(webhook_allow_private_networks=False)
    response = submit(api, webhook_url="https://hooks.internal.example/cb")
    assert response.status_code == 400
    assert "resolves to 10.9.8.7" in response.get_json()["detail"]["message"]


# ---------------------------------------------------------------------------------------------------- definitions

def test_unknown_workflow_is_404(api):
    response = submit(api, workflow_name="nonexistent_workflow")
    assert response.status_code == 404
    assert response.get_json() == envelope({
        "error": "WorkflowNotFound", "message": "Workflow 'nonexistent_workflow' not found",
        "workflow_name": "nonexistent_workflow"})
    assert api.queue.enqueued == []


def test_unicode_names_are_valid_names_that_simply_do_not_exist(api):
    response = submit(api, workflow_name="café_2")
    assert response.status_code == 404


def test_invalid_definition_is_400_with_its_problems(api):
    response = submit(api, workflow_name="no_steps")
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert detail["error"] == "WorkflowValidationError"
    assert detail["message"].startswith("Workflow definition invalid: ")
    assert detail["workflow_name"] == "no_steps"
    assert detail["problems"] and "at least one step" in detail["problems"][0]


def test_unreadable_definition_is_500_workflow_load_error(api):
    response = submit(api, workflow_name="garbled")
    assert response.status_code == 500
    detail = response.get_json()["detail"]
    assert detail["error"] == "WorkflowLoadError"
    assert detail["message"].startswith("Failed to load workflow: ")
    assert detail["workflow_name"] == "garbled"
    assert api.job_keys() == []


def test_validation_comes_before_loading_and_the_webhook_check_before_loading(make_api):
    api = make_api(webhook_allow_private_networks=False)
    bad_body = submit(api, workflow_name="nonexistent_workflow", priority=99)
    assert bad_body.status_code == 422
    refused = submit(api, workflow_name="nonexistent_workflow", webhook_url="http://127.0.0.1/")
    assert refused.status_code == 400 and refused.get_json()["detail"]["error"] == "InvalidWebhookURL"


# ---------------------------------------------------------------------------------------------------- outages

def test_store_down_is_503_and_nothing_is_queued(make_api, unreachable_services):
    api = make_api(services=unreachable_services)
    response = submit(api)
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert detail["error"] == "ServiceUnavailable" and detail["component"] == "job_store"
    assert "nothing was queued" in detail["message"] and "Retry" in detail["message"]
    assert response.headers["Retry-After"] == "5"
    assert api.queue.enqueued == []


def test_queue_down_is_503_and_the_record_is_removed_again(api):
    api.queue.fail_enqueue = True
    response = submit(api, user_id=str(uuid.uuid4()))
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert detail["error"] == "ServiceUnavailable" and detail["component"] == "job_queue"
    assert "nothing was queued" in detail["message"]
    assert api.job_keys() == []
    assert api.store.list_jobs(statuses=None, user_id=None, since=None, limit=10, offset=0) == ([], 0)


def test_an_unexpected_error_is_a_logged_500_without_details(api, monkeypatch, caplog):
    def explode(name):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(api.services.engine, "load", explode)
    with caplog.at_level(logging.ERROR, logger="llm_service.api"):
        response = submit(api)
    assert response.status_code == 500
    assert response.get_json() == envelope({"error": "InternalServerError",
                                              "message": "Internal server error; the failure was logged."})
    assert b"internal detail" not in response.data and b"Traceback" not in response.data
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "internal detail" in str(logged[0].exc_info[1])


def test_submission_is_logged_without_secrets_or_bodies(api, caplog):
    with caplog.at_level(logging.INFO, logger="llm_service.api"):
        response = submit(api, input_data={"person": "Very Private Person"}, webhook_secret="hook-secret-123")
    job_id = response.get_json()["job_id"]
    events = [r for r in caplog.records if getattr(r, "event", None) == "job.submitted"]
    assert len(events) == 1 and events[0].job_id == job_id and events[0].workflow_name == "greeting"
    dumped = " ".join(repr(vars(r)) for r in caplog.records)
    assert SECRET not in dumped and "Very Private Person" not in dumped and "hook-secret-123" not in dumped


# ---------------------------------------------------------------------------------------------------- rate limit

def test_submissions_are_limited_per_api_key(make_api):
    api = make_api(submit_rate_limit=2, submit_rate_window_seconds=60)
    assert submit(api).status_code == 202
    assert submit(api).status_code == 202
    refused = submit(api)
    assert refused.status_code == 429
    detail = refused.get_json()["detail"]
    assert detail["error"] == "RateLimitExceeded"
    assert 1 <= detail["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(detail["retry_after"])
    assert "2 per 60 seconds" in detail["message"]
    assert len(api.queue.enqueued) == 2
    keys = [k.decode() for k in api.services.redis.scan_iter(match=f"{api.config.redis_key_prefix}:*")]
    assert any("api_submit" in key for key in keys)
    assert not any(SECRET in key for key in keys)


def test_refused_or_failed_submissions_do_not_use_up_the_limit(make_api):
    api = make_api(submit_rate_limit=1, submit_rate_window_seconds=60)
    assert submit(api, workflow_name="nonexistent_workflow").status_code == 404
    assert submit(api, priority=99).status_code == 422
    api.queue.fail_enqueue = True
    assert submit(api).status_code == 503
    api.queue.fail_enqueue = False
    assert submit(api).status_code == 202
    assert submit(api).status_code == 429


def test_without_a_limit_configured_there_is_no_limit(api):
    assert all(submit(api).status_code == 202 for _ in range(5))
