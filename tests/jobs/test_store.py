"""JobStore against a real Redis: records, the state machine, indexes, listing, recovery, webhooks, outages."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from llm_service.jobs import (
    RECORD_DEFAULTS,
    STATUSES,
    DuplicateJob,
    IdempotencyKey,
    IdempotencyKeyTaken,
    JobStore,
    StoreUnavailable,
)
from llm_service.jobs.timeutil import epoch_to_ms, iso_to_epoch, iso_to_ms, ms_to_iso

DAY = 86400
HOOK = "https://hooks.example.com/done"


def new_job(store: JobStore, **fields) -> dict:
    return store.create({"workflow_name": "wf", **fields})


def drive(store: JobStore, job_id: str, target: str) -> str | None:
    """Move a fresh queued job to ``target`` through the public API; returns the lease token if one was issued."""
    if target == "queued":
        return None
    if target == "cancelled":
        assert store.cancel(job_id) == "cancelled"
        return None
    claim = store.claim(job_id, worker_id="w", lease_seconds=60)
    assert claim.outcome == "claimed"
    if target != "processing":
        assert store.finish(job_id, claim.token, status=target, result={"x": 1}, error=None, error_message=None)
    return claim.token


def all_keys(client: redis.Redis, prefix: str) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=f"{prefix}:*", count=1000)}


# ------------------------------------------------------------------------------------------------------ create/get

def test_create_fills_defaults_and_round_trips_json_types(store, assert_indexed):
    payload = {"flag": True, "off": False, "n": 3, "x": 1.5, "none": None, "nested": {"list": [1, "two", {"z": []}]},
               "text": "Zürich / 東京"}
    created = new_job(store, input_data=payload, priority=7, user_id="user-1", username="ann", action="plan",
                      webhook_url=HOOK, webhook_secret="s3cret", debug_mode=True, workflow_version="2.1")
    got = store.get(created["job_id"])
    assert got == created
    assert set(got) == set(RECORD_DEFAULTS)
    assert got["input_data"] == payload
    assert type(got["input_data"]["n"]) is int and type(got["input_data"]["x"]) is float
    assert got["status"] == "queued" and got["celery_task_id"] == got["job_id"]
    assert got["created_at"] == got["queued_at"] == got["updated_at"] == "2027-01-15T08:00:00.000Z"
    assert (got["attempts"], got["recoveries"], got["webhook_attempts"], got["total_tokens"]) == (0, 0, 0, 0)
    assert got["total_cost_usd"] == 0.0 and got["debug_mode"] is True and got["cancel_requested"] is False
    assert got["webhook_state"] == "none" and got["started_at"] is None and got["progress"] is None
    assert_indexed(created["job_id"])


def test_create_generates_uuid_and_ignores_store_owned_fields(store):
    created = new_job(store, status="completed", attempts=9, created_at="1999-01-01T00:00:00.000Z")
    assert str(uuid.UUID(created["job_id"])) == created["job_id"]
    got = store.get(created["job_id"])
    assert (got["status"], got["attempts"], got["created_at"]) == ("queued", 0, "2027-01-15T08:00:00.000Z")


def test_create_writes_hash_indexes_and_expiry(store, r, prefix, clock):
    job = new_job(store, user_id="u1")
    key = f"{prefix}:job:{job['job_id']}"
    assert r.ttl(key) == 31 * DAY or r.ttl(key) == 31 * DAY - 1
    assert json.loads(r.hget(key, "status")) == "queued"
    assert r.zscore(f"{prefix}:jobs:all", job["job_id"]) == clock.now
    assert r.zscore(f"{prefix}:jobs:user:u1", job["job_id"]) == clock.now
    assert r.smembers(f"{prefix}:jobs:users") in ({b"u1"}, {"u1"})


def test_create_writes_every_field_as_the_json_of_the_returned_record(store, r, prefix):
    """The values every new job starts with live in the create script, the rest travel per call: together they
    must be exactly the returned record, field for field, in record order."""
    job = new_job(store, user_id="u1", input_data={"a": [1, 2.5, None]}, priority=3, webhook_url=HOOK)
    stored = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
              for k, v in r.hgetall(f"{prefix}:job:{job['job_id']}").items()}
    assert stored == {key: json.dumps(value, ensure_ascii=False, separators=(",", ":")) for key, value in job.items()}
    assert list(job) == list(RECORD_DEFAULTS)


@pytest.mark.parametrize("fields, message", [
    ({"workflow_name": ""}, "workflow_name"),
    ({"workflow_name": "wf", "priority": 11}, "priority"),
    ({"workflow_name": "wf", "priority": True}, "priority"),
    ({"workflow_name": "wf", "job_id": "not-a-uuid"}, "job_id"),
    ({"workflow_name": "wf", "job_id": str(uuid.uuid4()).upper()}, "job_id"),
    ({"workflow_name": "wf", "user_id": 5}, "user_id"),
    ({"workflow_name": "wf", "debug_mode": "yes"}, "debug_mode"),
    ({"workflow_name": "wf", "surprise": 1}, "surprise"),
    ({"workflow_name": "wf", "input_data": {"when": object()}}, None),
    ({"workflow_name": "wf", "input_data": {"nan": float("nan")}}, None),
])
def test_create_rejects_bad_records_before_writing(store, r, prefix, fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        store.create(fields)
    assert all_keys(r, prefix) == set()


def test_create_refuses_an_existing_id_and_keeps_the_original(store, clock):
    original = new_job(store, input_data={"v": 1})
    clock.advance(5)
    with pytest.raises(DuplicateJob):
        new_job(store, job_id=original["job_id"], input_data={"v": 2})
    assert store.get(original["job_id"]) == original


def test_create_cut_before_the_script_with_no_retry_stores_nothing(make_store, breaking_proxy, r, prefix, store):
    store.create({"workflow_name": "warm-up"})  # loads the script, so the proxied call is a single EVALSHA
    proxy = breaking_proxy(b"EVALSHA\r\n", "before")
    proxied = make_store(proxy.port, retry=Retry(NoBackoff(), 0))
    job_id = str(uuid.uuid4())
    with pytest.raises(StoreUnavailable, match="not stored"):
        proxied.create({"workflow_name": "wf", "job_id": job_id, "user_id": "u1"})
    assert proxy.fired.is_set()
    assert store.get(job_id) is None and r.zscore(f"{prefix}:jobs:all", job_id) is None


def test_create_cut_before_the_script_is_retried_and_stored_once(make_store, breaking_proxy, store, assert_indexed):
    store.create({"workflow_name": "warm-up"})
    proxy = breaking_proxy(b"EVALSHA\r\n", "before")
    created = make_store(proxy.port).create({"workflow_name": "wf", "user_id": "u1"})
    assert proxy.fired.is_set()
    assert store.get(created["job_id"]) == created
    assert_indexed(created["job_id"])


def test_create_whose_reply_is_lost_returns_the_stored_record(make_store, breaking_proxy, store, assert_indexed):
    store.create({"workflow_name": "warm-up"})
    proxy = breaking_proxy(b"EVALSHA\r\n", "reply")
    proxied = make_store(proxy.port)
    created = proxied.create({"workflow_name": "wf", "user_id": "u1"})
    assert proxy.fired.is_set()
    assert store.get(created["job_id"]) == created
    assert_indexed(created["job_id"])


def test_create_with_an_idempotency_key_whose_reply_is_lost_returns_its_own_job(make_store, breaking_proxy, store):
    """redis-py re-sends the create; the key then names our own job, which is not a conflict."""
    key = IdempotencyKey(name="scope:k", fingerprint="f1", ttl_seconds=60)
    store.create({"workflow_name": "warm-up"})
    proxy = breaking_proxy(b"EVALSHA\r\n", "reply")
    created = make_store(proxy.port).create({"workflow_name": "wf"}, idempotency=key)
    assert proxy.fired.is_set()
    taken = store.idempotent_job(key)
    assert (taken.job_id, taken.same_request) == (created["job_id"], True)
    with pytest.raises(IdempotencyKeyTaken) as refused:
        store.create({"workflow_name": "wf"}, idempotency=IdempotencyKey("scope:k", "f2", 60))
    assert (refused.value.job_id, refused.value.same_request) == (created["job_id"], False)


def test_create_failing_inside_exec_leaves_no_half_job(store, r, prefix):
    r.set(f"{prefix}:jobs:user:u1", "not a sorted set")  # the user-index ZADD fails after HSET/ZADDs applied
    with pytest.raises(redis.exceptions.ResponseError):
        new_job(store, user_id="u1")
    assert all_keys(r, prefix) == {f"{prefix}:jobs:user:u1"}


def test_get_unknown_job_is_none(store):
    assert store.get(str(uuid.uuid4())) is None


# ------------------------------------------------------------------------------------------------------ claim

def test_claim_moves_queued_to_processing_with_a_lease(store, r, prefix, clock, assert_indexed):
    job = new_job(store)
    clock.advance(2)
    claim = store.claim(job["job_id"], worker_id="worker-1", lease_seconds=30)
    assert claim.outcome == "claimed" and claim.token
    record = assert_indexed(job["job_id"])
    assert claim.record == record
    assert record["status"] == "processing" and record["attempts"] == 1 and record["worker_id"] == "worker-1"
    assert record["started_at"] == "2027-01-15T08:00:02.000Z" and record["lease_token"] == claim.token
    lease = f"{prefix}:job:{job['job_id']}:lease"
    assert r.get(lease) in (claim.token, claim.token.encode())
    assert 0 < r.pttl(lease) <= 30_000


def test_claim_outcomes_for_every_other_state(store):
    assert store.claim(str(uuid.uuid4()), worker_id="w", lease_seconds=5).outcome == "not_found"
    busy = new_job(store)
    drive(store, busy["job_id"], "processing")
    second = store.claim(busy["job_id"], worker_id="w2", lease_seconds=5)
    assert (second.outcome, second.token, second.record["worker_id"]) == ("busy", None, "w")
    for terminal in ("completed", "failed", "cancelled"):
        job = new_job(store)
        drive(store, job["job_id"], terminal)
        result = store.claim(job["job_id"], worker_id="w", lease_seconds=5)
        assert (result.outcome, result.token, result.record["status"]) == ("finished", None, terminal)


def test_concurrent_claims_have_exactly_one_winner(make_store):
    stores = [make_store() for _ in range(6)]
    job_ids = [stores[0].create({"workflow_name": "wf"})["job_id"] for _ in range(10)]
    barrier = threading.Barrier(len(stores))
    won: list[list[str]] = [[] for _ in stores]

    def run(i: int) -> None:
        barrier.wait()
        for job_id in job_ids:
            if stores[i].claim(job_id, worker_id=f"w{i}", lease_seconds=30).outcome == "claimed":
                won[i].append(job_id)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for w in won for j in w) == sorted(job_ids)


# ------------------------------------------------------------------------------------------------------ publish on create

def test_create_with_a_message_pushes_it_once_with_the_job(store, r, prefix):
    queue_list = f"{prefix}:test-queue"
    job = store.create({"workflow_name": "wf"}, message=(queue_list, '{"job": 1}'))
    assert r.lrange(queue_list, 0, -1) in ([b'{"job": 1}'], ['{"job": 1}'])
    assert store.get(job["job_id"])["status"] == "queued"


def test_create_refused_for_its_idempotency_key_publishes_nothing(store, r, prefix):
    queue_list = f"{prefix}:test-queue"
    key = IdempotencyKey(name="k", fingerprint="f", ttl_seconds=60)
    first = store.create({"workflow_name": "wf"}, idempotency=key, message=(queue_list, "first"))
    with pytest.raises(IdempotencyKeyTaken) as taken:
        store.create({"workflow_name": "wf"}, idempotency=key, message=(queue_list, "second"))
    assert taken.value.job_id == first["job_id"]
    assert r.llen(queue_list) == 1


def test_create_with_a_message_whose_reply_is_lost_publishes_once(make_store, breaking_proxy, store, r, prefix):
    queue_list = f"{prefix}:test-queue"
    new_job(store)  # loads the script
    proxy = breaking_proxy(b"EVALSHA", "reply")
    job = make_store(proxy.port).create({"workflow_name": "wf"}, message=(queue_list, "only once"))
    assert proxy.fired.is_set()
    assert store.get(job["job_id"])["status"] == "queued"
    assert r.llen(queue_list) == 1


# ------------------------------------------------------------------------------------------------------ re-sent commands

def test_claim_whose_reply_was_lost_is_still_claimed_on_retry(make_store, breaking_proxy, store, assert_indexed):
    job = new_job(store)
    store.claim(str(uuid.uuid4()), worker_id="w", lease_seconds=1)  # loads the script first
    proxy = breaking_proxy(b"EVALSHA", "reply")
    claim = make_store(proxy.port).claim(job["job_id"], worker_id="w", lease_seconds=30)
    assert proxy.fired.is_set()
    assert claim.outcome == "claimed"
    record = assert_indexed(job["job_id"])
    assert record["lease_token"] == claim.token and record["attempts"] == 1


def test_finish_whose_reply_was_lost_still_reports_the_transition(make_store, breaking_proxy, store):
    job = new_job(store, webhook_url=HOOK)
    token = drive(store, job["job_id"], "processing")
    store.finish(str(uuid.uuid4()), "x", status="failed", result=None, error=None, error_message=None)
    proxy = breaking_proxy(b"EVALSHA", "reply")
    made_it = make_store(proxy.port).finish(job["job_id"], token, status="completed", result={"ok": True},
                                            error=None, error_message=None)
    assert proxy.fired.is_set()
    assert made_it is True
    assert store.get(job["job_id"])["status"] == "completed"
    assert store.finish(job["job_id"], token, status="completed", result=None, error=None, error_message=None) is False


def test_cancel_whose_reply_was_lost_still_reports_cancelled(make_store, breaking_proxy, store, assert_indexed):
    job = new_job(store, webhook_url=HOOK)
    store.cancel(str(uuid.uuid4()))
    proxy = breaking_proxy(b"EVALSHA", "reply")
    assert make_store(proxy.port).cancel(job["job_id"]) == "cancelled"
    assert proxy.fired.is_set()
    assert assert_indexed(job["job_id"])["status"] == "cancelled"
    assert store.cancel(job["job_id"]) == "finished"


def test_recover_whose_reply_was_lost_still_reports_requeued(make_store, breaking_proxy, store, r, prefix, clock):
    job = new_job(store)
    drive(store, job["job_id"], "processing")
    r.delete(f"{prefix}:job:{job['job_id']}:lease")
    clock.advance(120)
    store.recover_stale(max_recoveries=0, grace_seconds=10 ** 9)  # loads the script without touching the job
    proxy = breaking_proxy(b"EVALSHA", "reply")
    outcome = make_store(proxy.port).recover_stale(max_recoveries=1, grace_seconds=60)
    assert proxy.fired.is_set()
    assert outcome == [(job["job_id"], "requeued")]
    assert store.get(job["job_id"])["recoveries"] == 1


def test_appends_whose_reply_was_lost_are_not_doubled(make_store, breaking_proxy, store):
    job = new_job(store, webhook_url=HOOK)
    token = drive(store, job["job_id"], "processing")
    store.save_progress(job["job_id"], token, {"current_step": "a"}, {"step_id": "a"})
    store.record_webhook_attempt(job["job_id"], {"attempt_number": 0})
    store.delete([job["job_id"]])
    job = new_job(store, webhook_url=HOOK)
    token = drive(store, job["job_id"], "processing")
    for call in (lambda s: s.save_progress(job["job_id"], token, {"current_step": "a"}, {"step_id": "a"}),
                 lambda s: s.record_webhook_attempt(job["job_id"], {"attempt_number": 1})):
        proxy = breaking_proxy(b"EVALSHA", "reply")
        call(make_store(proxy.port))
        assert proxy.fired.is_set()
    assert store.steps(job["job_id"]) == [{"step_id": "a"}]
    assert store.webhook_attempts(job["job_id"]) == [{"attempt_number": 1}]
    assert store.get(job["job_id"])["webhook_attempts"] == 1


# ------------------------------------------------------------------------------------------------------ heartbeat

def test_heartbeat_extends_own_leases_and_reports_lost_ones(store, r, prefix, clock):
    mine, revived, requeued, finished, stolen = (new_job(store)["job_id"] for _ in range(5))
    tokens = {j: drive(store, j, "processing") for j in (mine, revived, requeued, finished, stolen)}
    r.pexpire(f"{prefix}:job:{mine}:lease", 1000)
    r.delete(f"{prefix}:job:{requeued}:lease")
    clock.advance(600)
    assert store.recover_stale(max_recoveries=1, grace_seconds=60) == [(requeued, "requeued")]
    r.delete(f"{prefix}:job:{revived}:lease")       # expired, but the sweeper has not taken the job (yet)
    store.finish(finished, tokens[finished], status="completed", result=None, error=None, error_message=None)
    leases = dict(tokens, **{stolen: "someone-else"}, **{str(uuid.uuid4()): "nobody"})
    lost = store.heartbeat(leases, lease_seconds=45)
    assert lost == {requeued, finished, stolen, *[j for j in leases if j not in tokens]}
    assert r.pttl(f"{prefix}:job:{mine}:lease") > 1000
    assert r.pttl(f"{prefix}:job:{revived}:lease") > 0
    assert store.get(revived)["status"] == "processing"
    assert store.heartbeat({}, lease_seconds=45) == set()


# ------------------------------------------------------------------------------------------------------ progress/finish

def test_save_progress_only_for_the_lease_holder(store, clock, assert_indexed):
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    clock.advance(1)
    assert store.save_progress(job["job_id"], token, {"current_step": "a", "steps_completed": 1, "total_steps": 2},
                               {"step_id": "a", "success": True}) is True
    assert store.save_progress(job["job_id"], "wrong", {"current_step": "b"}, {"step_id": "b"}) is False
    assert store.save_progress(job["job_id"], token, {"current_step": "b", "last_updated": "given"}, None) is True
    record = assert_indexed(job["job_id"])
    assert record["progress"] == {"current_step": "b", "last_updated": "given"}
    assert record["updated_at"] == "2027-01-15T08:00:01.000Z"
    assert store.steps(job["job_id"]) == [{"step_id": "a", "success": True}]
    store.finish(job["job_id"], token, status="completed", result=None, error=None, error_message=None)
    assert store.save_progress(job["job_id"], token, {"current_step": "c"}, {"step_id": "c"}) is False
    assert store.save_progress(str(uuid.uuid4()), token, {}, {"step_id": "x"}) is False
    assert len(store.steps(job["job_id"])) == 1


def test_finish_records_the_outcome_once(store, r, prefix, clock, assert_indexed):
    job = new_job(store, webhook_url=HOOK)
    token = drive(store, job["job_id"], "processing")
    r.set(f"{prefix}:job:{job['job_id']}:cancel", "1")
    clock.advance(2.5)
    assert store.finish(job["job_id"], "not-mine", status="completed", result={}, error=None,
                        error_message=None) is False
    assert store.finish(job["job_id"], token, status="completed", result={"output": [1, None]}, error=None,
                        error_message=None, total_tokens=42, total_cost_usd=0.25) is True
    record = assert_indexed(job["job_id"])
    assert record["status"] == "completed" and record["completed_at"] == "2027-01-15T08:00:02.500Z"
    assert record["duration_ms"] == 2500 and record["result"] == {"output": [1, None]}
    assert (record["total_tokens"], record["total_cost_usd"]) == (42, 0.25)
    assert (record["webhook_event"], record["webhook_state"]) == ("workflow.completed", "pending")
    assert record["webhook_next_attempt_at"] == "2027-01-15T08:00:32.500Z"  # safety net: 30 s unless rescheduled
    assert store.due_webhooks(clock.now + 29.999) == []
    assert store.due_webhooks(clock.now + 30) == [job["job_id"]]
    assert r.exists(f"{prefix}:job:{job['job_id']}:lease", f"{prefix}:job:{job['job_id']}:cancel") == 0
    clock.advance(1)
    assert store.finish(job["job_id"], token, status="failed", result=None, error={"type": "X"},
                        error_message="late") is False
    assert store.get(job["job_id"]) == record


def _unsaved(step_ids: list[str]) -> dict:
    """What a worker's finish carries for steps whose progress was not saved yet (shared outputs, as the engine's)."""
    outputs = {s: {"content": f"{s} " * 100, "rows": [{"n": i} for i in range(3)]} for s in step_ids}
    return {"progress_items": [({"current_step": s, "steps_completed": i + 1, "total_steps": len(step_ids)},
                                {"step_id": s, "success": True, "output": outputs[s]})
                               for i, s in enumerate(step_ids)],
            "step_records": [(s, {"output": outputs[s], "success": True, **outputs[s], "alias": outputs[s]["content"]})
                             for s in step_ids],
            "events": [(i + 1, "step.completed", {"step_id": s}) for i, s in enumerate(step_ids)],
            "usage": [{"model": "m", "total_tokens": 3}]}


def test_finish_saves_what_the_execution_had_not_saved_then_ends_it(store, clock):
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    unsaved = _unsaved(["a", "b"])
    result = {"output": "done", "steps_executed": [entry for _, entry in unsaved["progress_items"]]}
    clock.advance(1)
    assert store.finish(job["job_id"], token, status="completed", result=result, error=None, error_message=None,
                        **unsaved) is True
    record = store.get(job["job_id"])
    assert record["result"] == result and record["status"] == "completed"
    assert record["progress"] == {"current_step": "b", "steps_completed": 2, "total_steps": 2,
                                  "last_updated": "2027-01-15T08:00:01.000Z"}
    assert store.steps(job["job_id"]) == result["steps_executed"]
    assert store.step_records(job["job_id"]) == dict(unsaved["step_records"])
    assert store.usage(job["job_id"]) == unsaved["usage"]
    assert [(name, data) for _, name, data in store.events(job["job_id"])] == [
        ("step.completed", {"step_id": "a"}), ("step.completed", {"step_id": "b"}),
        ("job.completed", {"status": "completed"})]


def test_finish_with_unsaved_progress_whose_reply_was_lost_stores_it_once(make_store, breaking_proxy, store):
    job = new_job(store, webhook_url=HOOK)
    token = drive(store, job["job_id"], "processing")
    store.finish(str(uuid.uuid4()), "x", status="failed", result=None, error=None, error_message=None)
    unsaved = _unsaved(["a", "b"])
    proxy = breaking_proxy(b"EVALSHA", "reply")
    assert make_store(proxy.port).finish(job["job_id"], token, status="completed", result={"ok": True}, error=None,
                                         error_message=None, **unsaved) is True
    assert proxy.fired.is_set()
    assert store.steps(job["job_id"]) == [entry for _, entry in unsaved["progress_items"]]
    assert store.usage(job["job_id"]) == unsaved["usage"]
    assert [name for _, name, _ in store.events(job["job_id"])] == ["step.completed"] * 2 + ["job.completed"]


def test_progress_batch_whose_reply_was_lost_is_stored_once(make_store, breaking_proxy, store):
    """redis-py re-sends the whole batch; every step entry of it (not only the last) must be recognised."""
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    store.save_progress_batch(str(uuid.uuid4()), "x", [({"current_step": "x"}, None)])  # loads the script
    unsaved = _unsaved(["a", "b", "c"])
    proxy = breaking_proxy(b"EVALSHA", "reply")
    make_store(proxy.port).save_progress_batch(job["job_id"], token, unsaved["progress_items"],
                                               records=unsaved["step_records"], events=unsaved["events"])
    assert proxy.fired.is_set()
    assert store.steps(job["job_id"]) == [entry for _, entry in unsaved["progress_items"]]
    assert [name for _, name, _ in store.events(job["job_id"])] == ["step.completed"] * 3
    assert store.get(job["job_id"])["progress"]["current_step"] == "c"
    assert store.finish(job["job_id"], token, status="completed", result={"ok": True}, error=None,
                        error_message=None) is True  # the batch's receipt does not stand in for the finish's


@pytest.mark.parametrize("status, event", [("failed", "workflow.failed"), ("cancelled", "workflow.cancelled")])
def test_finish_failed_or_cancelled_without_webhook(store, clock, assert_indexed, status, event):
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    error = {"type": "UpstreamTimeout", "category": "EXTERNAL_ERROR", "retryable": True}
    assert store.finish(job["job_id"], token, status=status, result={"partial": True}, error=error,
                        error_message="boom") is True
    record = assert_indexed(job["job_id"])
    assert (record["status"], record["webhook_event"], record["webhook_state"]) == (status, event, "none")
    assert record["error"] == error and record["error_message"] == "boom"
    assert store.due_webhooks(clock.now + 3600) == [] and record["webhook_next_attempt_at"] is None


def test_finish_rejects_a_non_terminal_status(store):
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    with pytest.raises(ValueError):
        store.finish(job["job_id"], token, status="queued", result=None, error=None, error_message=None)
    assert store.get(job["job_id"])["status"] == "processing"


# ------------------------------------------------------------------------------------------------------ cancel

def test_cancel_a_queued_job_ends_it(store, clock, assert_indexed):
    job = new_job(store, webhook_url=HOOK)
    clock.advance(3)
    assert store.cancel(job["job_id"]) == "cancelled"
    record = assert_indexed(job["job_id"])
    assert record["status"] == "cancelled" and record["completed_at"] == "2027-01-15T08:00:03.000Z"
    assert record["duration_ms"] is None and record["cancel_requested"] is True
    assert (record["webhook_event"], record["webhook_state"]) == ("workflow.cancelled", "pending")
    assert store.due_webhooks(clock.now + 30) == [job["job_id"]]
    assert store.cancel(job["job_id"]) == "finished"


def test_cancel_a_running_job_asks_its_worker(store, assert_indexed):
    job = new_job(store)
    token = drive(store, job["job_id"], "processing")
    assert store.is_cancel_requested(job["job_id"]) is False
    assert store.cancel(job["job_id"]) == "cancelling"
    assert store.cancel(job["job_id"]) == "cancelling"
    record = assert_indexed(job["job_id"])
    assert record["status"] == "processing" and record["cancel_requested"] is True
    assert store.is_cancel_requested(job["job_id"]) is True
    assert store.finish(job["job_id"], token, status="cancelled", result=None, error=None, error_message=None)
    assert assert_indexed(job["job_id"])["status"] == "cancelled"
    assert store.cancel(job["job_id"]) == "finished"
    assert store.cancel(str(uuid.uuid4())) == "not_found"


def test_a_deleted_job_reads_as_cancel_requested(store):
    job = new_job(store)
    assert store.is_cancel_requested(job["job_id"]) is False
    store.delete([job["job_id"]])
    assert store.is_cancel_requested(job["job_id"]) is True


def test_cancel_requested_for_many_jobs_at_once(store):
    queued, running, cancelling, done, deleted = (new_job(store)["job_id"] for _ in range(5))
    for job, target in ((running, "processing"), (cancelling, "processing"), (done, "completed")):
        drive(store, job, target)
    store.cancel(cancelling)
    store.delete([deleted])
    assert store.cancel_requested([queued, running, cancelling, done, deleted]) == {cancelling, done, deleted}
    assert store.cancel_requested([]) == set()


# ------------------------------------------------------------------------------------------------------ terminal states

def _snapshot(client: redis.Redis, prefix: str) -> dict:
    """Every key of the test with its serialized value: the job hash, its sub-keys and all indexes."""
    return {key: client.dump(key) for key in sorted(all_keys(client, prefix))}


@pytest.mark.parametrize("route", ["completed", "failed", "cancelled-queued", "cancelled-running", "worker-lost"])
def test_terminal_states_are_final(store, r, prefix, clock, route, assert_indexed):
    job = new_job(store, webhook_url=HOOK, user_id="u1")
    job_id = job["job_id"]
    token = None
    if route == "cancelled-queued":
        store.cancel(job_id)
    else:
        token = drive(store, job_id, "processing")
        if route == "cancelled-running":
            store.cancel(job_id)
            store.finish(job_id, token, status="cancelled", result=None, error=None, error_message=None)
        elif route == "worker-lost":
            r.delete(f"{prefix}:job:{job_id}:lease")
            clock.advance(300)
            assert store.recover_stale(max_recoveries=0, grace_seconds=60) == [(job_id, "failed")]
        else:
            store.finish(job_id, token, status=route, result=None, error=None, error_message=None)
    before = store.get(job_id)
    assert before["status"] in ("completed", "failed", "cancelled")
    snapshot = _snapshot(r, prefix)
    clock.advance(3600)
    tokens = [t for t in (token, before["lease_token"], "forged") if t]
    assert store.claim(job_id, worker_id="w2", lease_seconds=30).outcome == "finished"
    for t in tokens:
        for status in ("completed", "failed", "cancelled"):
            assert store.finish(job_id, t, status=status, result={"again": 1}, error=None, error_message="x") is False
        assert store.save_progress(job_id, t, {"current_step": "z"}, {"step_id": "z"}) is False
        assert store.heartbeat({job_id: t}, lease_seconds=30) == {job_id}
    assert store.cancel(job_id) == "finished"
    assert store.recover_stale(max_recoveries=5, grace_seconds=0) == []
    assert store.is_cancel_requested(job_id) is True  # whatever still runs it should stop
    assert store.get(job_id) == before
    assert _snapshot(r, prefix) == snapshot
    assert_indexed(job_id)


# ------------------------------------------------------------------------------------------------------ sweeper

def test_recover_stale_requeues_then_fails_and_leaves_live_jobs_alone(store, r, prefix, clock, assert_indexed):
    stale = new_job(store, webhook_url=HOOK)["job_id"]
    alive = new_job(store)["job_id"]
    young = new_job(store)["job_id"]
    token = drive(store, stale, "processing")
    drive(store, alive, "processing")
    store.save_progress(stale, token, {"current_step": "a"}, {"step_id": "a"})
    r.delete(f"{prefix}:job:{stale}:lease")
    clock.advance(300)
    drive(store, young, "processing")
    r.delete(f"{prefix}:job:{young}:lease")          # lease gone but started inside the grace period
    assert store.recover_stale(max_recoveries=1, grace_seconds=60) == [(stale, "requeued")]
    record = assert_indexed(stale)
    assert record["status"] == "queued" and record["recoveries"] == 1 and record["lease_token"] is None
    assert record["progress"] is None and record["started_at"] is None and record["worker_id"] is None
    assert record["queued_at"] == "2027-01-15T08:05:00.000Z" and store.steps(stale) == []
    assert assert_indexed(alive)["status"] == "processing"
    assert assert_indexed(young)["status"] == "processing"
    assert store.finish(stale, token, status="completed", result=None, error=None, error_message=None) is False

    second = store.claim(stale, worker_id="w2", lease_seconds=30)
    assert second.outcome == "claimed" and second.record["attempts"] == 2
    r.delete(f"{prefix}:job:{stale}:lease")
    clock.advance(90)
    outcome = store.recover_stale(max_recoveries=1, grace_seconds=60)
    assert sorted(outcome) == sorted([(stale, "failed"), (young, "requeued")])
    record = assert_indexed(stale)
    assert record["status"] == "failed" and record["duration_ms"] == 90_000
    assert record["error"]["type"] == "WorkerLost" and record["error"]["category"] == "SYSTEM_ERROR"
    assert record["error"]["retryable"] is True and "used its 1 automatic re-run(s)" in record["error"]["message"]
    assert record["error_message"] == record["error"]["message"]
    assert (record["webhook_event"], record["webhook_state"]) == ("workflow.failed", "pending")
    assert assert_indexed(alive)["status"] == "processing"


def test_recover_stale_finishes_a_cancel_requested_job_as_cancelled(store, r, prefix, clock, assert_indexed):
    job = new_job(store)["job_id"]
    drive(store, job, "processing")
    store.cancel(job)
    r.delete(f"{prefix}:job:{job}:lease")
    clock.advance(120)
    assert store.recover_stale(max_recoveries=3, grace_seconds=60) == [(job, "cancelled")]
    record = assert_indexed(job)
    assert record["status"] == "cancelled" and record["webhook_event"] == "workflow.cancelled"
    assert r.exists(f"{prefix}:job:{job}:cancel") == 0


def test_two_sweepers_at_once_act_on_each_job_once(store, make_store, r, prefix, clock, assert_indexed):
    jobs = [new_job(store)["job_id"] for _ in range(40)]
    for job in jobs:
        drive(store, job, "processing")
        r.delete(f"{prefix}:job:{job}:lease")
    clock.advance(600)
    sweepers = [make_store(), make_store(decode_responses=True)]
    barrier = threading.Barrier(2)
    results: list[list] = [[], []]

    def sweep(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            results[i] += sweepers[i].recover_stale(max_recoveries=1, grace_seconds=60)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    combined = results[0] + results[1]
    assert sorted(combined) == sorted((job, "requeued") for job in jobs)
    for job in jobs:
        record = assert_indexed(job)
        assert record["status"] == "queued" and record["recoveries"] == 1


# ------------------------------------------------------------------------------------------------------ listing

def _build_population(store: JobStore, clock, seed: int) -> dict[str, dict]:
    rng = random.Random(seed)
    users = ["u-a", "u-b", "u-c", None]
    targets = ["queued", "processing", "completed", "failed", "cancelled"]
    jobs = {}
    for i in range(70):
        clock.advance(rng.choice([0, 0, 0.5, 3600, rng.random() * 8 * DAY]))  # ties, near and far
        job = new_job(store, user_id=rng.choice(users), username=f"n{i}", priority=rng.randint(0, 10))
        drive(store, job["job_id"], rng.choice(targets))
        jobs[job["job_id"]] = store.get(job["job_id"])
    return jobs


@pytest.mark.parametrize("seed", [1, 2])
def test_list_jobs_matches_a_python_filter_of_the_same_data(store, clock, seed):
    jobs = _build_population(store, clock, seed)
    now = clock.now
    assert now - min(iso_to_epoch(j["created_at"]) for j in jobs.values()) > 30 * DAY  # some are out of window
    status_sets = [None, [], ["queued"], ["queued", "processing"], ["completed", "failed", "cancelled"], ["pending"],
                   ["failed"], ["queued", "processing", "completed", "failed", "cancelled", "pending"]]
    user_ids = [None, "u-a", "u-b", "nobody"]
    sinces = [None, now - DAY, now - 7 * DAY, now - 100 * DAY, now + 1,
              iso_to_epoch(sorted(j["created_at"] for j in jobs.values())[-10])]
    pages = [(50, 0), (5, 0), (5, 5), (3, 7), (200, 0), (0, 0), (5, 1000)]
    checked_nonempty = 0
    for statuses in status_sets:
        for user in user_ids:
            for since in sinces:
                floor = max(now - 30 * DAY, since if since is not None else -1e18)
                matches = [j for j in jobs.values()
                           if (not statuses or j["status"] in statuses)
                           and (user is None or j["user_id"] == user)
                           and iso_to_ms(j["created_at"]) / 1000 >= floor]
                matches.sort(key=lambda j: (iso_to_ms(j["created_at"]), j["job_id"]), reverse=True)
                for limit, offset in pages:
                    page, total = store.list_jobs(statuses=statuses, user_id=user, since=since, limit=limit,
                                                  offset=offset)
                    assert total == len(matches), (statuses, user, since)
                    expected = matches[offset:offset + limit]
                    assert [p["job_id"] for p in page] == [j["job_id"] for j in expected], (statuses, user, since)
                    checked_nonempty += bool(page)
                    for summary, full in zip(page, expected):
                        assert summary == {k: full[k] for k in summary}
    assert checked_nonempty > 100


def test_list_jobs_summary_fields_and_validation(store):
    job = new_job(store, user_id="u1", username="ann", action="plan", priority=3, input_data={"big": "x"})
    page, total = store.list_jobs(statuses=None, user_id=None, since=None, limit=10, offset=0)
    assert total == 1
    assert page == [{"job_id": job["job_id"], "workflow_name": "wf", "status": "queued", "priority": 3,
                     "user_id": "u1", "username": "ann", "action": "plan", "created_at": job["created_at"],
                     "started_at": None, "completed_at": None, "duration_ms": None, "error_message": None,
                     "rerun_of": None}]
    with pytest.raises(ValueError, match="running"):
        store.list_jobs(statuses=["running"], user_id=None, since=None, limit=10, offset=0)
    with pytest.raises(ValueError):
        store.list_jobs(statuses=None, user_id=None, since=None, limit=-1, offset=0)


def test_multi_status_pages_match_the_full_newest_first_order(store, clock):
    """Several statuses (with and without a user) are merged page by page; the pages must be exactly the slices of
    the full newest-first list, ties on the creation time included."""
    statuses = ["queued", "processing", "completed", "failed", "cancelled"]
    for n in range(30):
        if n % 4 == 0:
            clock.advance(1)  # several jobs share each creation time
        drive(store, new_job(store, user_id=f"u{n % 2}")["job_id"], statuses[n * 7 % 5])
    for user in (None, "u1"):
        everything, _ = store.list_jobs(statuses=None, user_id=user, since=None, limit=100, offset=0)
        for wanted in (["completed", "failed"], ["queued", "processing", "cancelled"]):
            expected = [j["job_id"] for j in everything if j["status"] in wanted]
            for offset, limit in ((0, 4), (3, 5), (8, 100), (0, 0)):
                page, total = store.list_jobs(statuses=wanted, user_id=user, since=None, limit=limit, offset=offset)
                assert total == len(expected)
                assert [j["job_id"] for j in page] == expected[offset:offset + limit]


def test_list_leaves_no_scratch_keys(store, r, prefix):
    for user in ("u1", "u2"):
        new_job(store, user_id=user)
    before = all_keys(r, prefix)
    store.list_jobs(statuses=["queued", "failed"], user_id="u1", since=None, limit=10, offset=0)
    assert all_keys(r, prefix) == before


def test_expired_jobs_leave_lists_counts_and_indexes(store, r, prefix, clock):
    old = new_job(store, user_id="gone")["job_id"]
    old_shared = new_job(store, user_id="stays", webhook_url=HOOK)["job_id"]
    drive(store, old_shared, "failed")
    clock.advance(5 * DAY)
    fresh = new_job(store, user_id="stays")["job_id"]
    clock.advance(25 * DAY + 1)
    assert store.list_jobs(statuses=None, user_id=None, since=None, limit=10, offset=0)[1] == 1
    assert store.list_jobs(statuses=None, user_id="gone", since=None, limit=10, offset=0) == ([], 0)
    assert store.count_by_status() == dict.fromkeys(STATUSES, 0) | {"queued": 1}
    assert store.purge_expired() == 2
    assert r.zcard(f"{prefix}:jobs:all") == 1 and r.zscore(f"{prefix}:jobs:all", fresh) is not None
    assert r.exists(f"{prefix}:jobs:user:gone") == 0
    assert {m.decode() if isinstance(m, bytes) else m for m in r.smembers(f"{prefix}:jobs:users")} == {"stays"}
    assert r.zscore(f"{prefix}:jobs:status:failed", old_shared) is None
    assert r.zscore(f"{prefix}:webhooks:due", old_shared) is None
    assert store.get(old) is None and store.get(old_shared) is None and store.get(fresh) is not None
    assert not [k for k in all_keys(r, prefix) if old in k or old_shared in k]
    assert store.purge_expired() == 0


def test_count_by_status(store):
    for target in ["queued", "queued", "processing", "completed", "failed", "cancelled", "cancelled"]:
        drive(store, new_job(store)["job_id"], target)
    assert store.count_by_status() == {"pending": 0, "queued": 2, "processing": 1, "completed": 1, "failed": 1,
                                       "cancelled": 2}


# ------------------------------------------------------------------------------------------------------ delete

def test_delete_removes_jobs_with_every_key_and_index(store, r, prefix):
    keep = new_job(store, user_id="u2")["job_id"]
    running = new_job(store, user_id="u1", webhook_url=HOOK)["job_id"]
    done = new_job(store, user_id="u1", webhook_url=HOOK)["job_id"]
    token = drive(store, running, "processing")
    store.save_progress(running, token, {"current_step": "a"}, {"step_id": "a"})
    store.add_usage(running, [{"model": "m", "total_tokens": 3}])
    store.cancel(running)
    drive(store, done, "completed")
    store.record_webhook_attempt(done, {"attempt_number": 1})
    keys_before = all_keys(r, prefix)
    missing = str(uuid.uuid4())
    deleted = store.delete([running, done, missing, done])
    assert sorted(deleted, key=lambda d: d["job_id"]) == sorted(
        [{"job_id": running, "status": "processing"}, {"job_id": done, "status": "completed"}],
        key=lambda d: d["job_id"])
    remaining = all_keys(r, prefix)
    assert not any(running in k or done in k for k in remaining)
    assert f"{prefix}:jobs:user:u1" not in remaining and f"{prefix}:job:{keep}" in remaining
    assert {m.decode() if isinstance(m, bytes) else m for m in r.smembers(f"{prefix}:jobs:users")} == {"u2"}
    assert keys_before - remaining >= {f"{prefix}:job:{running}:steps", f"{prefix}:job:{running}:usage",
                                       f"{prefix}:job:{done}:webhooks", f"{prefix}:job:{running}:cancel"}
    assert store.finish(running, token, status="completed", result=None, error=None, error_message=None) is False
    assert store.list_jobs(statuses=None, user_id=None, since=None, limit=10, offset=0)[1] == 1
    assert store.delete([]) == []


# ------------------------------------------------------------------------------------------------------ lists

def test_usage_steps_and_attempts_round_trip_and_expire_with_the_job(store, r, prefix):
    job = new_job(store, webhook_url=HOOK)["job_id"]
    token = drive(store, job, "processing")
    usage = [{"provider": "openrouter", "model": "m", "total_tokens": 10, "cost_usd": 0.001},
             {"provider": "openrouter", "model": "m2", "total_tokens": 5, "cost_usd": 0.0}]
    store.add_usage(job, usage)
    store.add_usage(job, [])
    store.save_progress(job, token, {"current_step": "s"}, {"step_id": "s", "output": {"a": None}})
    store.record_webhook_attempt(job, {"attempt_number": 1, "http_status": 500})
    store.record_webhook_attempt(job, {"attempt_number": 2, "http_status": 200})
    assert store.usage(job) == usage
    assert store.steps(job) == [{"step_id": "s", "output": {"a": None}}]
    assert [a["attempt_number"] for a in store.webhook_attempts(job)] == [1, 2]
    assert store.get(job)["webhook_attempts"] == 2
    job_ttl = r.pttl(f"{prefix}:job:{job}")
    for sub in ("usage", "steps", "webhooks"):
        assert 0 <= job_ttl - r.pttl(f"{prefix}:job:{job}:{sub}") < 60_000
    ghost = str(uuid.uuid4())
    store.add_usage(ghost, usage)
    store.record_webhook_attempt(ghost, {"attempt_number": 1})
    assert store.usage(ghost) == [] and r.exists(f"{prefix}:job:{ghost}") == 0


# ------------------------------------------------------------------------------------------------------ webhooks

def test_webhook_attempts_store_the_payload_once_and_read_back_whole(store, r, prefix, clock):
    job_id = new_job(store, webhook_url=HOOK)["job_id"]
    drive(store, job_id, "completed")
    result = {"output": {"contacts": ["x" * 100] * 370}}  # ~37 KB, like emergency_contacts
    for number in (1, 2, 3):
        clock.advance(5)
        stamp = ms_to_iso(epoch_to_ms(clock()))
        store.record_webhook_attempt(job_id, {
            "attempt_number": number, "event": "workflow.completed", "attempted_at": stamp, "http_status": 500,
            "payload": {"event": "workflow.completed", "job_id": job_id, "timestamp": stamp, "result": result}})
    attempts = store.webhook_attempts(job_id)
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3]
    for attempt in attempts:
        assert attempt["payload"] == {"event": "workflow.completed", "job_id": job_id,
                                      "timestamp": attempt["attempted_at"], "result": result}
        assert "payload_ref" not in attempt
    stored = r.lrange(f"{prefix}:job:{job_id}:webhooks", 0, -1)
    assert sum(len(item) for item in stored) < 1000  # the attempts hold a reference, not ~37 KB each
    assert r.hlen(f"{prefix}:job:{job_id}:payloads") == 1
    assert abs(r.pttl(f"{prefix}:job:{job_id}:payloads") - r.pttl(f"{prefix}:job:{job_id}")) < 1000  # expire together
    assert store.get(job_id)["webhook_attempts"] == 3
    store.delete([job_id])
    assert r.exists(f"{prefix}:job:{job_id}:payloads") == 0


def test_webhook_state_and_due_queue(store, clock):
    first, second, third = (new_job(store, webhook_url=HOOK)["job_id"] for _ in range(3))
    store.set_webhook_state(first, "pending", next_attempt_at=clock.now + 45)
    store.set_webhook_state(second, "pending", next_attempt_at=clock.now + 5)
    store.set_webhook_state(third, "pending", next_attempt_at=clock.now + 15)
    assert store.due_webhooks(clock.now) == []
    assert store.due_webhooks(clock.now + 15) == [second, third]
    assert store.due_webhooks(clock.now + 60, limit=2) == [second, third]
    record = store.get(second)
    assert record["webhook_state"] == "pending" and record["webhook_next_attempt_at"] == "2027-01-15T08:00:05.000Z"
    store.set_webhook_state(second, "delivered")
    store.set_webhook_state(third, "failed", permanently_failed=True)
    assert store.due_webhooks(clock.now + 60) == [first]
    record = store.get(third)
    assert record["webhook_state"] == "failed" and record["webhook_permanently_failed"] is True
    assert record["webhook_next_attempt_at"] is None
    store.set_webhook_state(first, "pending")  # no time given: stays scheduled as it was
    assert store.due_webhooks(clock.now + 60) == [first]
    with pytest.raises(ValueError):
        store.set_webhook_state(first, "sent")
    store.delete([first])
    assert store.due_webhooks(clock.now + 60) == []


def test_webhook_safety_delay_is_configurable(r, prefix, clock):
    store = JobStore(r, prefix=prefix, clock=clock, webhook_safety_delay=0)
    job = new_job(store, webhook_url=HOOK)["job_id"]
    assert store.cancel(job) == "cancelled"
    assert store.due_webhooks(clock.now) == [job]


def test_try_lock_is_exclusive_until_it_expires(store, r, prefix):
    assert store.try_lock("webhook:abc", 30) is True
    assert store.try_lock("webhook:abc", 30) is False
    assert store.try_lock("sweeper", 30) is True
    assert 0 < r.pttl(f"{prefix}:lock:webhook:abc") <= 30_000


# ------------------------------------------------------------------------------------------------------ outages

def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


_CALLS = {
    "create": lambda s: s.create({"workflow_name": "wf"}),
    "get": lambda s: s.get(str(uuid.uuid4())),
    "claim": lambda s: s.claim(str(uuid.uuid4()), worker_id="w", lease_seconds=5),
    "heartbeat": lambda s: s.heartbeat({str(uuid.uuid4()): "t"}, lease_seconds=5),
    "finish": lambda s: s.finish(str(uuid.uuid4()), "t", status="failed", result=None, error=None,
                                 error_message=None),
    "list_jobs": lambda s: s.list_jobs(statuses=["queued"], user_id=None, since=None, limit=5, offset=0),
    "recover_stale": lambda s: s.recover_stale(max_recoveries=1, grace_seconds=5),
    "count_by_status": lambda s: s.count_by_status(),
    "purge_expired": lambda s: s.purge_expired(),
    "try_lock": lambda s: s.try_lock("x", 1),
}


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_unreachable_redis_raises_store_unavailable(name, clock):
    client = redis.Redis(host="127.0.0.1", port=_closed_port(), retry=Retry(NoBackoff(), 0))
    store = JobStore(client, clock=clock)
    with pytest.raises(StoreUnavailable, match="Job store unavailable") as info:
        _CALLS[name](store)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    assert store.ping() is False


def test_silent_redis_times_out_as_store_unavailable(clock):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        client = redis.Redis(host="127.0.0.1", port=silent.getsockname()[1], socket_timeout=0.2,
                             socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        with pytest.raises(StoreUnavailable, match="Timeout") as info:
            JobStore(client, clock=clock).get(str(uuid.uuid4()))
        assert isinstance(info.value.__cause__, redis.exceptions.TimeoutError)
        client.close()


def test_ping(store):
    assert store.ping() is True


# ------------------------------------------------------------------------------------------------------ green threads

_GREEN_SCRIPT = r"""
import json, sys
mode, prefix = sys.argv[1], sys.argv[2]
if mode == "eventlet":
    import eventlet
    eventlet.monkey_patch()
    from eventlet.patcher import is_monkey_patched
    patched = is_monkey_patched("socket")
    def run_all(fn, n):
        return list(eventlet.GreenPool(n).imap(fn, range(n)))
else:
    from gevent import monkey
    monkey.patch_all()
    import gevent.pool
    patched = monkey.is_module_patched("socket")
    def run_all(fn, n):
        return gevent.pool.Pool(n).map(fn, range(n))
import redis
from llm_service.jobs import JobStore
store = JobStore(redis.Redis(host="127.0.0.1", port=6379, db=15, decode_responses=(mode == "gevent")),
                 prefix=prefix)
ids = [store.create({"workflow_name": "wf"})["job_id"] for _ in range(12)]

def worker(n):
    won = {}
    for job_id in ids:
        claim = store.claim(job_id, worker_id="g%d" % n, lease_seconds=30)
        if claim.outcome == "claimed":
            won[job_id] = claim.token
    lost = sorted(store.heartbeat(won, lease_seconds=30))
    finished = [store.finish(j, t, status="completed", result={"by": n}, error=None, error_message=None)
                for j, t in won.items()]
    return {"claimed": list(won), "lost": lost, "finished": finished}

results = run_all(worker, 8)
page, total = store.list_jobs(statuses=["completed"], user_id=None, since=None, limit=50, offset=0)
print(json.dumps({"patched": bool(patched), "ids": ids, "results": results, "total": total}))
"""


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_works_under_monkey_patching(mode, prefix):
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    done = subprocess.run([sys.executable, "-c", _GREEN_SCRIPT, mode, prefix], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["patched"] is True
    claimed = [j for result in report["results"] for j in result["claimed"]]
    assert sorted(claimed) == sorted(report["ids"])
    assert all(result["lost"] == [] and all(result["finished"]) for result in report["results"])
    assert report["total"] == len(report["ids"])
