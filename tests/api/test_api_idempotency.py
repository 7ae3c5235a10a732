"""POST /api/v1/workflow with an Idempotency-Key: replay, conflicting reuse, concurrency (real Redis), expiry,
scope per API secret, and how it meets the submission limit and a failed publish."""
from __future__ import annotations

import threading
import time

from tests.api.support import AUTH, SECRET

BODY = {"workflow_name": "greeting", "input_data": {"person": "Ann"}, "priority": 3}


def submit(api, key: str | None, body: dict | None = None, secret: str = SECRET):
    headers = {"X-API-Secret": secret} if key is None else {"X-API-Secret": secret, "Idempotency-Key": key}
    return api.client.post("/api/v1/workflow", json=body or BODY, headers=headers)


def test_a_repeat_with_the_same_key_and_body_answers_the_first_job(api):
    first = submit(api, "order-42")
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    again = submit(api, "order-42", {"priority": 3, "input_data": {"person": "Ann"}, "workflow_name": "greeting"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(api.queue.enqueued) == 1 and len(api.job_keys()) == 1


def test_the_replay_shows_the_jobs_current_status(api):
    job_id = submit(api, "k").get_json()["job_id"]
    api.store.cancel(job_id)
    assert submit(api, "k").get_json()["status"] == "cancelled"


def test_the_same_key_with_another_body_is_refused(api):
    job_id = submit(api, "order-42").get_json()["job_id"]
    response = submit(api, "order-42", {**BODY, "priority": 4})
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail["error"] == "IdempotencyKeyReused" and detail["job_id"] == job_id
    assert "different request body" in detail["message"]
    assert len(api.queue.enqueued) == 1


def test_without_a_key_every_submit_is_a_new_job(api):
    assert submit(api, None).get_json()["job_id"] != submit(api, None).get_json()["job_id"]
    assert submit(api, "a").get_json()["job_id"] != submit(api, "b").get_json()["job_id"]


def test_concurrent_identical_requests_create_exactly_one_job(api):
    clients = [api.app.test_client() for _ in range(8)]
    start = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def post(i: int) -> None:
        start.wait()
        answers[i] = clients[i].post("/api/v1/workflow", json=BODY, headers={**AUTH, "Idempotency-Key": "race"})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 7 + [202]
    assert len({answer.get_json()["job_id"] for answer in answers}) == 1
    assert len(api.queue.enqueued) == 1 and len(api.job_keys()) == 1


def test_a_key_is_forgotten_after_its_ttl(make_api):
    api = make_api(idempotency_ttl_seconds=1)
    first = submit(api, "short").get_json()["job_id"]
    keys = list(api.services.redis.scan_iter(match=f"{api.config.redis_key_prefix}:idempotency:*"))
    assert len(keys) == 1 and 0 < api.services.redis.pttl(keys[0]) <= 1000
    while api.services.redis.exists(keys[0]):
        time.sleep(0.05)
    later = submit(api, "short")
    assert later.status_code == 202 and later.get_json()["job_id"] != first


def test_keys_are_scoped_per_api_secret(make_api, prefix):
    api = make_api()
    other = make_api(api_secret="another-secret-0123456789")
    mine = submit(api, "shared-name").get_json()["job_id"]
    theirs = submit(other, "shared-name", secret="another-secret-0123456789")
    assert theirs.status_code == 202 and theirs.get_json()["job_id"] != mine
    stored = list(api.services.redis.scan_iter(match=f"{prefix}:idempotency:*"))
    assert len(stored) == 2 and not any(b"shared-name" in key for key in stored)


def test_a_deleted_job_frees_its_key(api):
    first = submit(api, "k").get_json()["job_id"]
    assert api.delete("/api/v1/jobs/bulk", json={"job_ids": [first]}).status_code == 200
    again = submit(api, "k")
    assert again.status_code == 202 and again.get_json()["job_id"] != first


def test_a_failed_publish_leaves_the_key_free_for_the_retry(api):
    api.queue.fail_enqueue = True
    assert submit(api, "k").status_code == 503
    api.queue.fail_enqueue = False
    retry = submit(api, "k")
    assert retry.status_code == 202 and api.queue.enqueued == [(retry.get_json()["job_id"], 3)]


def test_a_replay_does_not_count_against_the_submission_limit(make_api):
    api = make_api(submit_rate_limit=1, submit_rate_window_seconds=60)
    assert submit(api, "k").status_code == 202
    assert submit(api, "k").status_code == 200
    assert submit(api, "other").status_code == 429


def test_a_malformed_key_is_a_validation_error(api):
    for bad in ("", "x" * 256, "caf\u00e9", " padded"):
        response = submit(api, bad)
        assert response.status_code == 422, bad
        assert response.get_json()["detail"]["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert submit(api, "x" * 255).status_code == 202
    assert api.queue.enqueued and len(api.queue.enqueued) == 1


def test_the_header_and_the_replay_are_documented(api):
    operation = api.client.get("/openapi.json").get_json()["paths"]["/api/v1/workflow"]["post"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= operation["parameters"][0].items()
    assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
    assert "IdempotencyKeyReused" in operation["responses"]["422"]["description"]
