"""The worker runtime against real Redis: claim-once execution, webhooks once, cancellation, crash recovery.

Celery is not involved: the runtime is plain code and the queue is a recording fake, so each guarantee is checked
directly (the integration tests cover the same paths through real worker processes)."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import responses

from llm_service.config import Config
from llm_service.engine.errors import UpstreamServerError, WorkflowCancelled
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.services import Services
from llm_service.tasks.runtime import WorkerRuntime
from tests.engine.fakes import FakeService, api_step, make_engine, write_workflow

HOOK = "https://hooks.example.test/receive"


class Gate:
    """An upstream call that blocks until released or cancelled (as the HTTP helper does)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, params, *, timeout, cancel=None):
        self.entered.set()
        while not self.release.wait(0.01):
            if cancel is not None and cancel.is_cancelled():
                raise WorkflowCancelled("Cancelled while waiting for fake")
        return {"released": True}


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def runtime(tmp_path, redis_client, redis_prefix, recording_queue, gate):
    def broken(params, **_):
        raise UpstreamServerError("Server error (500): down")

    write_workflow(tmp_path, {"name": "ok", "steps": [api_step("a", params={"x": "${input.x}"})]})
    write_workflow(tmp_path, {"name": "slow", "steps": [api_step("wait", "gate"), api_step("after")]})
    write_workflow(tmp_path, {"name": "bad", "steps": [api_step("a", "broken")]})
    engine = make_engine(tmp_path, FakeService("fake", echo=lambda p, **_: dict(p), gate=gate, broken=broken))
    config = Config(redis_key_prefix=redis_prefix, job_lease_seconds=0.3, sweeper_interval_seconds=0.05,
                    webhook_secret="global-secret-value", webhook_allow_private_networks=True)
    store = JobStore(redis_client, prefix=redis_prefix)
    http = HttpClient(pool_size=4, user_agent="test", allow_private_networks=True)
    services = Services(config=config, http=http, redis=redis_client, engine=engine, extras={"store": store})
    rt = WorkerRuntime(config, services=services, queue=recording_queue)
    yield rt
    http.close()


def submit(rt: WorkerRuntime, workflow: str = "ok", **fields) -> str:
    job_id = str(uuid.uuid4())
    rt.store.create({"job_id": job_id, "workflow_name": workflow, "input_data": {"x": 1}, "webhook_url": HOOK,
                     **fields})
    return job_id


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


def run_in_thread(runtime, job_id):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(runtime.run_job(job_id)))
    thread.start()
    return thread, outcome


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
    items, events = buffer.drain()
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
