"""The worker runtime against real Redis: claim-once execution, webhooks once, cancellation, crash recovery.

Celery is not involved: the runtime is plain code and the queue is a recording fake, so each guarantee is checked
directly (the integration tests cover the same paths through real worker processes)."""
from __future__ import annotations

import time

import responses

from llm_service.jobs import JobStore
from tests.engine.fakes import api_step, write_workflow
from tests.tasks.support import HOOK, run_in_thread, submit


def test_job_runs_once_and_its_webhook_is_dispatched_once(runtime, recording_queue):
    job_id = submit(runtime)
    assert runtime.run_job(job_id) == {"job_id": job_id, "status": "completed"}
    record = runtime.store.get(job_id)
    assert record["status"] == "completed" and record["result"]["output"]["data"] == {"x": 1}
    assert record["progress"]["steps_completed"] == 1
    assert [s["step_id"] for s in runtime.store.steps(job_id)] == ["a"]
    assert recording_queue.webhooks == [(job_id, "workflow.completed", 1)]

    # the broker redelivers the message (worker restarted before acking): nothing runs, nothing is sent
    assert runtime.run_job(job_id) == {"job_id": job_id, "skipped": "finished"}
    assert recording_queue.webhooks == [(job_id, "workflow.completed", 1)]


def test_failed_workflow_stores_a_structured_error(runtime, recording_queue):
    job_id = submit(runtime, "bad")
    runtime.run_job(job_id)
    record = runtime.store.get(job_id)
    assert record["status"] == "failed"
    assert record["error"]["category"] == "EXTERNAL_ERROR" and record["error"]["step_id"] == "a"
    assert record["error_message"] == "Server error (500): down"
    assert recording_queue.webhooks == [(job_id, "workflow.failed", 1)]


def test_unknown_workflow_at_run_time_fails_with_config_error(runtime):
    job_id = submit(runtime, "vanished")
    runtime.run_job(job_id)
    record = runtime.store.get(job_id)
    assert record["status"] == "failed" and record["error"]["category"] == "CONFIG_ERROR"


def test_cancelling_a_running_job_stops_it_at_its_upstream_wait(runtime, recording_queue, gate):
    job_id = submit(runtime, "slow")
    thread, outcome = run_in_thread(runtime, job_id)
    assert gate.entered.wait(5)
    assert runtime.store.cancel(job_id) == "cancelling"
    runtime.maintenance_tick(force=True)
    thread.join(10)
    assert outcome["status"] == "cancelled"
    record = runtime.store.get(job_id)
    assert record["status"] == "cancelled" and record["result"]["metadata"]["cancelled"] is True
    assert recording_queue.webhooks == [(job_id, "workflow.cancelled", 1)]


def test_steps_before_a_slow_step_are_saved_while_it_runs_and_the_slow_step_is_named(runtime, gate, tmp_path):
    write_workflow(tmp_path, {"name": "quick_then_slow", "steps": [
        api_step("quick", params={"x": 1}), api_step("wait", "gate", display_name="Wait for the gate")]})
    job_id = submit(runtime, "quick_then_slow")
    thread, outcome = run_in_thread(runtime, job_id)
    assert gate.entered.wait(5)
    progress = None
    for _ in range(100):  # the maintenance loop flushes what waited PROGRESS_DELAY; nothing else is saving now
        runtime.maintenance_tick()
        progress = runtime.store.get(job_id)["progress"]
        if progress:
            break
        time.sleep(0.02)
    gate.release.set()
    thread.join(10)
    assert progress is not None and progress["steps_completed"] == 1 and progress["current_step"] == "quick"
    assert (progress["active_step"], progress["active_step_name"]) == ("wait", "Wait for the gate")
    assert [entry["step_id"] for entry in runtime.store.steps(job_id)] == ["quick", "wait"]
    assert outcome["status"] == "completed"


def test_a_short_job_saves_its_progress_with_the_finish_only(runtime, monkeypatch):
    saves = []
    monkeypatch.setattr(runtime.store, "save_progress_batch", lambda *args, **kw: saves.append(args))
    job_id = submit(runtime)
    runtime.maintenance_tick()  # nothing has waited long enough yet
    assert runtime.run_job(job_id)["status"] == "completed"
    assert saves == [] and runtime.store.get(job_id)["progress"]["steps_completed"] == 1
    events = runtime.store.events(job_id)
    assert [name for _, name, _ in events] == ["step.started", "step.completed", "job.completed"]
    assert events[1][2] == {"step_id": "a", "name": "a", "index": 1, "total": 1, "steps_completed": 1,
                            "status": "completed", "duration_ms": events[1][2]["duration_ms"], "cached": False}


def test_streamed_text_is_published_in_merged_batches_with_the_progress(runtime, redis_prefix):
    from llm_service.tasks.runtime import ProgressBuffer

    job_id = submit(runtime)
    token = runtime.store.claim(job_id, worker_id="w", lease_seconds=30).token
    now = [0.0]
    buffer = ProgressBuffer(runtime.store, job_id, token, clock=lambda: now[0])
    buffer.step_started("a", 1, 1, "Ask")
    for delta in ("Hel", "lo", " world"):
        buffer.llm_token("a", delta)
    assert runtime.store.events(job_id) == []  # nothing saved yet: too soon after the last save
    now[0] = 1.0
    buffer.flush_due()
    buffer.llm_token("a", "!")  # the last save is now 0 s old: waits for the next flush
    saved = [(name, data) for _, name, data in runtime.store.events(job_id)]
    assert saved == [("step.started", {"step_id": "a", "name": "Ask", "index": 1, "total": 1}),
                     ("llm.token", {"step_id": "a", "delta": "Hello world"})]
    assert runtime.store.get(job_id)["progress"]["active_step"] == "a"  # the same round trip as its progress
    items, records, events = buffer.drain()
    assert [(name, data) for _, name, data in events] == [("llm.token", {"step_id": "a", "delta": "!"})]


def test_deleting_a_running_job_stops_it_without_a_webhook(runtime, recording_queue, gate):
    job_id = submit(runtime, "slow")
    thread, outcome = run_in_thread(runtime, job_id)
    assert gate.entered.wait(5)
    runtime.store.delete([job_id])
    runtime.maintenance_tick(force=True)
    thread.join(10)
    assert outcome["status"] == "discarded"
    assert runtime.store.get(job_id) is None
    assert recording_queue.webhooks == []


def test_a_job_whose_worker_died_is_requeued_once_then_failed(runtime, recording_queue):
    job_id = submit(runtime, priority=7)
    dead = runtime.store.claim(job_id, worker_id="dead-worker", lease_seconds=0.2)
    assert dead.outcome == "claimed"
    time.sleep(0.4)  # the dead worker's lease and the grace period pass
    runtime.maintenance_tick(force=True)
    assert runtime.store.get(job_id)["status"] == "queued"
    assert recording_queue.jobs == [(job_id, 7)]

    again = runtime.store.claim(job_id, worker_id="dead-again", lease_seconds=0.2)
    assert again.outcome == "claimed"
    time.sleep(0.4)
    runtime.maintenance_tick(force=True)
    record = runtime.store.get(job_id)
    assert record["status"] == "failed" and record["error"]["type"] == "WorkerLost"
    assert recording_queue.webhooks == [(job_id, "workflow.failed", 1)]
    # the dead worker coming back cannot record anything
    assert not runtime.store.finish(job_id, again.token, status="completed", result={}, error=None,
                                    error_message=None)


def test_a_live_lease_is_never_recovered(runtime, recording_queue, gate):
    job_id = submit(runtime, "slow")
    thread, _ = run_in_thread(runtime, job_id)
    assert gate.entered.wait(5)
    for _ in range(4):
        time.sleep(0.15)
        runtime.maintenance_tick(force=True)  # heartbeats keep the 0.3 s lease alive
    assert runtime.store.get(job_id)["status"] == "processing"
    gate.release.set()
    thread.join(10)
    assert runtime.store.get(job_id)["status"] == "completed"
    assert recording_queue.jobs == []


def test_due_webhook_retries_are_dispatched_by_the_maintenance_tick(runtime, recording_queue):
    job_id = submit(runtime)
    runtime.run_job(job_id)
    runtime.store.record_webhook_attempt(job_id, {"attempt_number": 1, "success": False})
    runtime.store.set_webhook_state(job_id, "pending", next_attempt_at=time.time() - 1)
    runtime.maintenance_tick(force=True)
    assert recording_queue.webhooks[-1] == (job_id, "workflow.completed", 2)


@responses.activate
def test_deliver_webhook_signs_posts_and_schedules_a_retry(runtime):
    responses.add(responses.POST, HOOK, status=500)
    job_id = submit(runtime)
    runtime.run_job(job_id)
    outcome = runtime.deliver_webhook(job_id, "workflow.completed", 1)
    assert outcome["outcome"] == "retry" and outcome["delay"] == 5
    assert responses.calls[0].request.headers["X-Webhook-Signature"].startswith("sha256=")
    attempts = runtime.store.webhook_attempts(job_id)
    assert [a["http_status"] for a in attempts] == [500]
    assert runtime.store.get(job_id)["webhook_state"] == "pending"


def test_no_job_is_recovered_until_live_workers_could_renew_their_leases_after_an_outage(runtime, monkeypatch):
    from llm_service.jobs import StoreUnavailable

    job_id = submit(runtime)
    runtime.store.claim(job_id, worker_id="elsewhere", lease_seconds=0.2)
    time.sleep(0.4)  # its lease lapses, as every lease does while Redis is down

    def outage(*_, **__):
        raise StoreUnavailable("Redis is down (test)")

    runtime.leases.add("some-running-job", "token")
    monkeypatch.setattr(runtime.store, "heartbeat", outage)
    runtime.maintenance_tick(force=True)
    monkeypatch.undo()
    runtime.leases.remove("some-running-job")
    runtime.maintenance_tick(force=True)
    assert runtime.store.get(job_id)["status"] == "processing"  # Redis is back, but too recently

    time.sleep(0.35)  # one lease period (0.3 s) after the outage
    runtime.maintenance_tick(force=True)
    assert runtime.store.get(job_id)["status"] == "queued"


# ---------------------------------------------------------------------------------------------- presence, retention

def test_maintenance_publishes_the_workers_heartbeat_and_stop_withdraws_it(runtime, redis_client, redis_prefix):
    from llm_service.jobs.presence import WorkerPresence

    presence = WorkerPresence(redis_prefix)
    assert presence.live(redis_client) == []
    runtime.maintenance_tick(force=True)
    [published] = presence.live(redis_client)
    assert published["worker_id"] == runtime.worker_id and published["running"] == 0
    assert 0 < redis_client.pttl(f"{redis_prefix}:worker:{runtime.worker_id}") <= 15000
    runtime.stop()
    assert presence.live(redis_client) == []


def test_the_scheduled_purge_removes_expired_jobs_once_per_interval(runtime, redis_client, redis_prefix):
    from tests.support import EpochClock

    clock = EpochClock()
    runtime.store = JobStore(redis_client, prefix=redis_prefix, retention_days=0.0001, clock=clock)  # ~8.6 s
    expired = [submit(runtime, user_id="u1") for _ in range(2)]
    clock.advance(10)
    fresh = submit(runtime, user_id="u1")
    runtime.maintenance_tick(force=True)
    assert [j["job_id"] for j in runtime.store.list_jobs(statuses=None, user_id="u1", since=None, limit=10,
                                                          offset=0)[0]] == [fresh]
    for job_id in expired:
        assert runtime.store.get(job_id) is None
        assert redis_client.zscore(f"{redis_prefix}:jobs:all", job_id) is None
        assert redis_client.zscore(f"{redis_prefix}:jobs:user:u1", job_id) is None
    clock.advance(10)
    runtime.maintenance_tick(force=True)  # within JOB_PURGE_INTERVAL_SECONDS: another worker holds the lock
    assert runtime.store.get(fresh) is not None
    redis_client.delete(f"{redis_prefix}:lock:purge")
    runtime.maintenance_tick(force=True)
    assert runtime.store.get(fresh) is None


def test_a_queued_job_whose_message_was_lost_is_published_again_once_per_period(runtime, recording_queue):
    runtime.config = runtime.config.with_overrides(queued_republish_seconds=0.3)
    lost = submit(runtime, priority=6)  # stored as queued, but never published: its message is lost
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == []  # not before the bound
    time.sleep(0.35)
    runtime.maintenance_tick(force=True)
    time.sleep(0.06)  # the sweeper's lock (0.8 sweeper intervals) lapses
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == [(lost, 6)]  # once per period, not once per sweep
    assert runtime.run_job(lost)["status"] == "completed"
    assert runtime.run_job(lost) == {"job_id": lost, "skipped": "finished"}  # the other message: no second run
    time.sleep(0.35)
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == [(lost, 6)]  # a job that ran is never published again


def test_queued_jobs_are_not_published_again_while_the_broker_holds_enough_messages(runtime, recording_queue):
    runtime.config = runtime.config.with_overrides(queued_republish_seconds=0.2)
    first, second = submit(runtime), submit(runtime)
    time.sleep(0.25)
    recording_queue.waiting = 2  # a backlog: each queued job can still have its message
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == []  # (it would be re-sent after ten periods even so)
    recording_queue.waiting = 1  # one message is missing: the broker cannot tell which, so both go again
    time.sleep(0.06)
    runtime.maintenance_tick(force=True)
    assert sorted(recording_queue.jobs) == sorted([(first, 0), (second, 0)])


def test_each_step_record_is_kept_as_the_step_finishes_so_a_crash_mid_run_keeps_it(runtime, gate):
    job_id = submit(runtime, "then_slow")
    thread, _ = run_in_thread(runtime, job_id)
    assert gate.entered.wait(5)
    kept = {}
    for _ in range(100):  # saved with its progress: at once, or by the maintenance loop within PROGRESS_DELAY
        runtime.maintenance_tick()
        kept = runtime.store.step_records(job_id)  # the job is still running its second step
        if kept:
            break
        time.sleep(0.02)
    assert list(kept) == ["first"] and kept["first"]["success"] is True and kept["first"]["data"] == {}
    gate.release.set()
    thread.join(10)
    assert set(runtime.store.step_records(job_id)) == {"first", "wait"}


def test_even_behind_a_full_looking_backlog_a_queued_job_is_published_again_after_ten_periods(runtime,
                                                                                             recording_queue):
    runtime.config = runtime.config.with_overrides(queued_republish_seconds=0.03)
    job_id = submit(runtime)
    recording_queue.waiting = 5  # more messages than queued jobs: none looks lost
    time.sleep(0.06)
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == []
    time.sleep(0.3)  # ten periods
    runtime.maintenance_tick(force=True)
    assert recording_queue.jobs == [(job_id, 0)]
