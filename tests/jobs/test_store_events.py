"""The job event stream in the store: published only by the execution holding the lease, once per event even when
redis-py re-sends a batch, a terminal event for every way a job ends, and the job's lifetime."""
from __future__ import annotations

from llm_service.jobs import JobStore


def _running(store: JobStore) -> tuple[str, str]:
    job_id = store.create({"workflow_name": "wf"})["job_id"]
    return job_id, store.claim(job_id, worker_id="w", lease_seconds=30).token


def _names(store: JobStore, job_id: str) -> list[str]:
    return [name for _, name, _ in store.events(job_id)]


def test_a_resent_batch_is_stored_once_and_only_the_lease_holder_publishes(store):
    job_id, token = _running(store)
    batch = [(1, "step.started", {"step_id": "a"}), (2, "llm.token", {"step_id": "a", "delta": "x"})]
    store.save_progress_batch(job_id, token, [], events=batch)
    store.save_progress_batch(job_id, token, [], events=batch)  # as redis-py re-sends after a lost reply
    store.save_progress_batch(job_id, token, [], events=[(2, "llm.token", {"step_id": "a", "delta": "x"}),
                                                  (3, "step.completed", {"step_id": "a"})])
    store.save_progress_batch(job_id, "not-the-token", [], events=[(4, "step.started", {"step_id": "b"})])
    assert _names(store, job_id) == ["step.started", "llm.token", "step.completed"]
    ids = [event_id for event_id, _, _ in store.events(job_id)]
    assert store.events(job_id, ids[0]) == store.events(job_id)[1:]


def test_every_way_a_job_ends_appends_one_terminal_event(store, r, prefix, clock):
    queued = store.create({"workflow_name": "wf"})["job_id"]
    assert store.cancel(queued) == "cancelled" and store.cancel(queued) == "finished"
    assert _names(store, queued) == ["job.cancelled"]

    lost, _ = _running(store)
    r.delete(f"{prefix}:job:{lost}:lease")
    clock.advance(60)
    assert store.recover_stale(max_recoveries=1, grace_seconds=1) == [(lost, "requeued")]
    store.claim(lost, worker_id="w2", lease_seconds=30)
    r.delete(f"{prefix}:job:{lost}:lease")
    clock.advance(60)
    assert store.recover_stale(max_recoveries=1, grace_seconds=1) == [(lost, "failed")]
    assert _names(store, lost) == ["job.requeued", "job.failed"]
    assert store.events(lost)[-1][2] == {"status": "failed"}

    done, token = _running(store)
    store.finish(done, token, status="completed", result={}, error=None, error_message=None,
                 events=[(1, "step.started", {"step_id": "a"})])
    assert _names(store, done) == ["step.started", "job.completed"]
    ttl = r.pttl(f"{prefix}:job:{done}:events")
    assert 0 < ttl and abs(ttl - r.pttl(f"{prefix}:job:{done}")) < 5000
    store.delete([done])
    assert not r.exists(f"{prefix}:job:{done}:events")
