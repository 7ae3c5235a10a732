"""Status, details, webhook attempts, cancellation, listing and bulk deletion of jobs created through the store."""
from __future__ import annotations

import time
import uuid

import pytest

from llm_service.api.routes.jobs import bulk_delete_message
from llm_service.jobs import JobStore
from tests.api.support import envelope, HOOK, StepClock, drive, new_job

STATUS_KEYS = ["job_id", "status", "workflow_name", "created_at", "started_at", "completed_at", "duration_ms",
               "result", "error_message", "current_step", "steps_completed", "total_steps", "webhook_url", "error",
               "rerun_of"]
SUMMARY_KEYS = ["job_id", "workflow_name", "status", "priority", "user_id", "username", "action", "created_at",
                "started_at", "completed_at", "duration_ms", "error_message", "rerun_of"]
ERROR = {"type": "UpstreamTimeout", "category": "EXTERNAL_ERROR", "message": "weather timed out",
         "timestamp": "2026-01-01T00:00:00.000Z", "retryable": True, "retry_after": 30, "step_id": "w", "details": {}}


# ---------------------------------------------------------------------------------------------------- status

def test_status_of_a_submitted_job(api):
    """12.1 #8: submit then status."""
    submitted = api.post("/api/v1/workflow", json={"workflow_name": "greeting", "input_data": {},
                                                   "webhook_url": HOOK}).get_json()
    response = api.get(submitted["status_url"])
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == STATUS_KEYS
    assert body["job_id"] == submitted["job_id"] and body["status"] == "queued"
    assert body["workflow_name"] == "greeting" and body["created_at"].endswith("Z")
    assert body["webhook_url"] == HOOK
    assert body["result"] is None and body["current_step"] is None and body["error"] is None


def test_status_while_processing_shows_progress_but_no_result(api):
    job_id = new_job(api.store, "queued")
    token = drive(api.store, job_id, "processing")
    api.store.save_progress(job_id, token, {"current_step": "compose", "steps_completed": 1, "total_steps": 2},
                            {"step_id": "compose", "success": True})
    body = api.get(f"/api/v1/status/{job_id}").get_json()
    assert body["status"] == "processing" and body["started_at"] is not None
    assert (body["current_step"], body["steps_completed"], body["total_steps"]) == ("compose", 1, 2)
    assert body["result"] is None


def test_status_of_a_completed_job_has_its_result(api):
    job_id = api.store.create({"workflow_name": "greeting"})["job_id"]
    drive(api.store, job_id, "completed", result={"workflow_name": "greeting", "success": True, "output": "hi"})
    body = api.get(f"/api/v1/status/{job_id}").get_json()
    assert body["status"] == "completed" and body["result"]["output"] == "hi"
    assert body["completed_at"] is not None and isinstance(body["duration_ms"], int)
    assert body["current_step"] is None


def test_status_of_a_failed_job_shows_its_partial_result_and_error(api):
    job_id = api.store.create({"workflow_name": "greeting"})["job_id"]
    drive(api.store, job_id, "failed", result={"workflow_name": "greeting", "success": False, "output": None,
                                               "steps_executed": [{"step_id": "compose", "success": True}]},
          error=ERROR, error_message="weather timed out")
    body = api.get(f"/api/v1/status/{job_id}").get_json()
    assert body["status"] == "failed"
    assert body["result"]["steps_executed"][0]["step_id"] == "compose"
    assert body["error_message"] == "weather timed out" and body["error"] == ERROR


def test_status_of_a_cancelled_job(api):
    job_id = new_job(api.store, "cancelled")
    body = api.get(f"/api/v1/status/{job_id}").get_json()
    assert body["status"] == "cancelled" and body["completed_at"] is not None


def test_status_accepts_every_uuid_spelling_and_answers_canonical(api):
    job_id = new_job(api.store)
    hex_form = uuid.UUID(job_id).hex
    for spelling in (job_id.upper(), hex_form, "{" + job_id + "}", "urn:uuid:" + job_id):
        body = api.get(f"/api/v1/status/{spelling}").get_json()
        assert body["job_id"] == job_id


def test_status_of_an_unknown_or_malformed_id(api):
    """12.1 #7."""
    missing = str(uuid.uuid4())
    response = api.get(f"/api/v1/status/{missing}")
    assert response.status_code == 404
    assert response.get_json() == envelope({"error": "JobNotFound", "message": f"Job not found: {missing}",
                                              "job_id": missing})
    response = api.get("/api/v1/status/invalid-uuid")
    assert response.status_code == 400
    assert response.get_json() == envelope({
        "error": "InvalidJobID", "message": "Invalid job ID format (expected UUID): invalid-uuid",
        "job_id": "invalid-uuid"})


@pytest.mark.parametrize("raw", ["..", "%00", "%F0%9F%98%80", "x" * 5000, "' OR 1=1 --"])
def test_odd_ids_are_400_not_500(api, raw):
    response = api.get(f"/api/v1/status/{raw}")
    assert response.status_code in (400, 404)
    assert response.get_json()["detail"]["error"] in ("InvalidJobID", "NotFound")


def test_status_store_down_is_503(make_api, unreachable_services):
    api = make_api(services=unreachable_services)
    response = api.get(f"/api/v1/status/{uuid.uuid4()}")
    assert response.status_code == 503 and response.get_json()["detail"]["component"] == "job_store"


# ---------------------------------------------------------------------------------------------------- details

def test_job_details_hide_secrets_and_add_steps_usage_and_webhook(api):
    job_id = api.store.create({"workflow_name": "greeting", "webhook_url": HOOK, "webhook_secret": "whsec-123456",
                               "input_data": {"person": "Ann"}})["job_id"]
    token = drive(api.store, job_id, "processing")
    api.store.save_progress(job_id, token, {"current_step": "compose", "steps_completed": 1, "total_steps": 2},
                            {"step_id": "compose", "success": True})
    api.store.add_usage(job_id, [{"provider": "openrouter", "model": "m", "total_tokens": 12}])
    response = api.get(f"/api/v1/jobs/{job_id.upper()}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["job_id"] == job_id and body["input_data"] == {"person": "Ann"}
    for hidden in ("webhook_secret", "lease_token", "worker_id"):
        assert hidden not in body
    assert b"whsec-123456" not in response.data and token.encode() not in response.data
    assert body["steps"] == [{"step_id": "compose", "success": True}]
    assert body["usage"] == [{"provider": "openrouter", "model": "m", "total_tokens": 12}]
    assert body["webhook"] == {"state": "none", "attempts": 0, "permanently_failed": False, "next_attempt_at": None}
    assert body["status"] == "processing" and body["progress"]["current_step"] == "compose"


def test_job_details_errors(api):
    assert api.get("/api/v1/jobs/not-a-uuid").get_json()["detail"]["error"] == "InvalidJobID"
    assert api.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_webhook_attempts_of_a_job(api):
    job_id = api.store.create({"workflow_name": "greeting", "webhook_url": HOOK})["job_id"]
    drive(api.store, job_id, "completed")
    api.store.record_webhook_attempt(job_id, {"attempt_number": 1, "http_status": 500, "error_message": None})
    api.store.set_webhook_state(job_id, "pending", next_attempt_at=time.time() + 5)
    response = api.get(f"/api/v1/jobs/{job_id}/webhooks")
    assert response.status_code == 200
    assert response.get_json() == {
        "job_id": job_id, "webhook_url": HOOK, "state": "pending", "permanently_failed": False,
        "attempts": [{"attempt_number": 1, "http_status": 500, "error_message": None}]}
    assert api.get(f"/api/v1/jobs/{uuid.uuid4()}/webhooks").status_code == 404


# ---------------------------------------------------------------------------------------------------- cancel

def test_cancel_a_queued_job_with_a_webhook(api):
    job_id = new_job(api.store, webhook_url=HOOK)
    response = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.get_json() == {"job_id": job_id, "status": "cancelled"}
    record = api.store.get(job_id)
    assert record["status"] == "cancelled" and record["webhook_event"] == "workflow.cancelled"
    assert api.queue.revoked == [job_id]
    assert api.queue.webhooks == [(job_id, "workflow.cancelled")]
    assert record["webhook_state"] == "pending" and record["webhook_next_attempt_at"] is not None


def test_cancel_a_queued_job_without_a_webhook(api):
    job_id = new_job(api.store)
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    assert api.queue.revoked == [job_id] and api.queue.webhooks == []


def test_cancel_still_succeeds_when_the_webhook_cannot_be_published(api):
    api.queue.fail_webhooks = True
    job_id = new_job(api.store, webhook_url=HOOK)
    response = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    record = api.store.get(job_id)
    assert record["status"] == "cancelled"
    assert record["webhook_state"] == "pending" and record["webhook_next_attempt_at"] is not None


def test_cancel_a_running_job_asks_it_to_stop(api):
    job_id = new_job(api.store, "processing", webhook_url=HOOK)
    response = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.get_json() == {"job_id": job_id, "status": "cancelling",
                                   "message": "the running job will stop at its next step or upstream wait"}
    assert api.store.is_cancel_requested(job_id)
    assert api.store.get(job_id)["status"] == "processing"
    assert api.queue.revoked == [] and api.queue.webhooks == []


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_a_finished_job_is_409(api, status):
    job_id = new_job(api.store, status)
    response = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert detail["error"] == "JobAlreadyFinished" and detail["status"] == status and detail["job_id"] == job_id
    assert api.store.get(job_id)["status"] == status


def test_cancel_unknown_and_invalid_ids(api):
    missing = str(uuid.uuid4())
    response = api.post(f"/api/v1/jobs/{missing}/cancel")
    assert response.status_code == 404 and response.get_json()["detail"]["error"] == "JobNotFound"
    assert api.post("/api/v1/jobs/nope/cancel").get_json()["detail"]["error"] == "InvalidJobID"


# ---------------------------------------------------------------------------------------------------- listing

USER_A, USER_B = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def listed(api):
    """Six jobs created one millisecond apart (oldest first) with different statuses and users."""
    store = JobStore(api.services.redis, prefix=api.config.redis_key_prefix, clock=StepClock(time.time() - 60))
    plan = [("queued", USER_A), ("queued", USER_A), ("processing", USER_B), ("completed", USER_A),
            ("failed", USER_B), ("cancelled", USER_A)]
    ids = [new_job(store, status, user_id=user, username=f"u{n}", action="plan", priority=n)
           for n, (status, user) in enumerate(plan)]
    return api, ids  # ids[0] is the oldest


def listing(api, query: str = "") -> dict:
    response = api.get(f"/api/v1/jobs{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_list_all_newest_first_with_summaries(listed):
    api, ids = listed
    body = listing(api)
    assert body["total"] == 6 and body["limit"] == 50 and body["offset"] == 0
    assert [job["job_id"] for job in body["jobs"]] == ids[::-1]
    assert all(list(job) == SUMMARY_KEYS for job in body["jobs"])
    newest = body["jobs"][0]
    assert (newest["status"], newest["user_id"], newest["username"], newest["priority"]) == (
        "cancelled", USER_A, "u5", 5)


@pytest.mark.parametrize("query, expected", [
    ("?status=running", [0, 1, 2]), ("?status=completed", [3]), ("?status=failed", [4]),
    ("?status=cancelled", [5]), ("?status=queued", [0, 1]), ("?status=processing", [2]), ("?status=all", range(6)),
    ("?status=", range(6)), (f"?user_id={USER_A}", [0, 1, 3, 5]), (f"?user_id={USER_B.upper()}", [2, 4]),
    (f"?status=running&user_id={USER_A}", [0, 1]),
])
def test_list_filters(listed, query, expected):
    api, ids = listed
    body = listing(api, query)
    assert {job["job_id"] for job in body["jobs"]} == {ids[i] for i in expected}
    assert body["total"] == len(list(expected))


def test_list_paging_keeps_the_total(listed):
    api, ids = listed
    body = listing(api, "?limit=2&offset=1")
    assert [job["job_id"] for job in body["jobs"]] == [ids[4], ids[3]]
    assert (body["total"], body["limit"], body["offset"]) == (6, 2, 1)
    assert listing(api, "?offset=10")["jobs"] == []


def test_numeric_limit_results_replaces_limit_up_to_500(listed):
    api, ids = listed
    body = listing(api, "?limit_results=2&limit=5")
    assert body["limit"] == 2 and len(body["jobs"]) == 2
    body = listing(api, "?limit_results=300")
    assert body["limit"] == 300 and body["total"] == 6


def test_period_limit_results_are_rolling_windows(api):
    now = time.time()
    for days_ago in (0.5, 3, 10, 20):
        store = JobStore(api.services.redis, prefix=api.config.redis_key_prefix,
                         clock=lambda d=days_ago: now - d * 86400)
        new_job(store)
    assert listing(api, "?limit_results=Today")["total"] == 1
    assert listing(api, "?limit_results=7%20Days")["total"] == 2
    assert listing(api, "?limit_results=30+Days")["total"] == 4


@pytest.mark.parametrize("query, code, extra", [
    ("?status=bogus", "InvalidStatusFilter", {"valid_values": [
        "running", "completed", "failed", "all", "pending", "queued", "processing", "cancelled"]}),
    ("?status=Running", "InvalidStatusFilter", {}),
    ("?user_id=x", "InvalidUserID", {"user_id": "x"}),
    ("?limit_results=0", "InvalidLimitResults", {"limit_results": "0"}),
    ("?limit_results=501", "InvalidLimitResults", {"limit_results": "501"}),
    ("?limit_results=-3", "InvalidLimitResults", {"limit_results": "-3"}),
    ("?limit_results=abc", "InvalidLimitResults", {"limit_results": "abc",
                                                   "valid_values": ["1-500", "Today", "7 Days", "30 Days"]}),
    ("?limit_results=today", "InvalidLimitResults", {}),
    ("?status=bogus&user_id=x&limit_results=abc", "InvalidStatusFilter", {}),
    ("?user_id=x&limit_results=abc", "InvalidUserID", {}),
])
def test_list_filter_errors_are_400(api, query, code, extra):
    response = api.get(f"/api/v1/jobs{query}")
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert detail["error"] == code
    for key, value in extra.items():
        assert detail[key] == value


def test_list_error_messages_are_the_old_ones(api):
    assert api.get("/api/v1/jobs?status=bogus").get_json()["detail"]["message"] == (
        "Invalid status filter: 'bogus'. Valid values: 'running', 'completed', 'failed', 'all', 'pending', "
        "'queued', 'processing', 'cancelled'")
    assert api.get("/api/v1/jobs?user_id=x").get_json()["detail"]["message"] == (
        "Invalid user_id format (expected UUID): x")
    assert api.get("/api/v1/jobs?limit_results=0").get_json()["detail"]["message"] == (
        "Numeric limit must be between 1-500 (got: 0)")
    assert api.get("/api/v1/jobs?limit_results=abc").get_json()["detail"]["message"] == (
        "Invalid limit_results value: 'abc'. Expected: numeric value (1-500), 'Today', '7 Days', or '30 Days'")


@pytest.mark.parametrize("query, field", [
    ("?limit=0", "limit"), ("?limit=201", "limit"), ("?limit=abc", "limit"), ("?limit=5.0", "limit"),
    ("?offset=-1", "offset"), ("?offset=x", "offset"), ("?offset=716840013106731008", "offset"),
    ("?limit=0&status=bogus", "limit"),
    ("?limit=" + "9" * 5000, "limit"),
])
def test_list_paging_errors_are_422(api, query, field):
    response = api.get(f"/api/v1/jobs{query}")
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail["errors"][0]["loc"] == ["query", field]
    assert detail["message"].startswith(f"{field}: ")


def test_unknown_query_parameters_are_ignored(api):
    assert api.get("/api/v1/jobs?whatever=1&limit=3").get_json()["limit"] == 3


# ---------------------------------------------------------------------------------------------------- bulk delete

def bulk(api, ids):
    return api.delete("/api/v1/jobs/bulk", json={"job_ids": ids})


def test_bulk_delete_of_one_queued_job(api):
    job_id = new_job(api.store, webhook_url=HOOK)
    response = bulk(api, [job_id])
    assert response.status_code == 200
    assert response.get_json() == {"deleted_count": 1, "tasks_revoked": 0, "redis_removed": 1, "job_ids": [job_id],
                                   "message": "Successfully deleted 1 job, 1 queued task removed"}
    assert api.store.get(job_id) is None and api.job_keys() == []
    assert api.queue.revoked == [job_id]
    assert api.queue.webhooks == []


def test_bulk_delete_of_a_running_job_tells_it_to_stop(api):
    job_id = new_job(api.store, "processing")
    body = bulk(api, [job_id]).get_json()
    assert (body["deleted_count"], body["tasks_revoked"], body["redis_removed"]) == (1, 1, 0)
    assert body["message"] == "Successfully deleted 1 job, 1 running task terminated"
    assert api.store.is_cancel_requested(job_id)  # the worker treats the vanished record as a cancellation


def test_bulk_delete_mixed_states_counts_each(api):
    ids = [new_job(api.store, s) for s in ("queued", "queued", "processing", "completed", "failed")]
    missing = str(uuid.uuid4())
    body = bulk(api, [ids[0].upper(), *ids[1:], missing]).get_json()
    assert body["deleted_count"] == 5 and body["tasks_revoked"] == 1 and body["redis_removed"] == 2
    assert body["job_ids"] == ids
    assert body["message"] == "Successfully deleted 5 jobs, 1 running task terminated, 2 queued tasks removed"
    assert sorted(api.queue.revoked) == sorted(ids[:2])


def test_bulk_delete_of_unknown_jobs_deletes_nothing(api):
    body = bulk(api, [str(uuid.uuid4())]).get_json()
    assert body == {"deleted_count": 0, "tasks_revoked": 0, "redis_removed": 0, "job_ids": [],
                    "message": "No jobs deleted"}


def test_bulk_delete_empty_list_is_400(api):
    response = bulk(api, [])
    assert response.status_code == 400
    assert response.get_json() == envelope({"error": "EmptyJobIdsList", "message": "job_ids list cannot be empty"})


def test_bulk_delete_with_an_invalid_id_deletes_nothing(api):
    job_id = new_job(api.store)
    response = bulk(api, [job_id, "x", "also-bad"])
    assert response.status_code == 400
    assert response.get_json() == envelope({"error": "InvalidJobIDs",
                                              "message": "Invalid job ID format (expected UUID)",
                                              "invalid_ids": ["x", "also-bad"]})
    assert api.store.get(job_id)["status"] == "queued"


@pytest.mark.parametrize("body, loc", [
    ({"job_ids": [1]}, ["body", "job_ids", 0]), ({"job_ids": "abc"}, ["body", "job_ids"]),
    ({"job_ids": None}, ["body", "job_ids"]), ({}, ["body", "job_ids"]),
])
def test_bulk_delete_body_errors_are_422(api, body, loc):
    response = api.delete("/api/v1/jobs/bulk", json=body)
    assert response.status_code == 422
    assert response.get_json()["detail"]["errors"][0]["loc"] == loc


@pytest.mark.parametrize("counts, message", [
    ((0, 0, 0), "No jobs deleted"),
    ((1, 0, 0), "Successfully deleted 1 job"),
    ((2, 0, 0), "Successfully deleted 2 jobs"),
    ((1, 1, 1), "Successfully deleted 1 job, 1 running task terminated, 1 queued task removed"),
    ((3, 2, 0), "Successfully deleted 3 jobs, 2 running tasks terminated"),
    ((0, 0, 2), "Successfully deleted 2 queued tasks removed"),
])
def test_bulk_delete_message(counts, message):
    assert bulk_delete_message(*counts) == message


def test_get_on_the_bulk_path_is_read_as_a_job_id(api):
    """GET /api/v1/jobs/<id> exists now, so GET /api/v1/jobs/bulk is an invalid id (the old API answered 405)."""
    response = api.get("/api/v1/jobs/bulk")
    assert response.status_code == 400 and response.get_json()["detail"]["error"] == "InvalidJobID"
    response = api.post("/api/v1/jobs/bulk", json={"job_ids": []})
    assert response.status_code == 405 and "DELETE" in response.get_json()["detail"]["allowed_methods"]
