"""Per-user fairness (USER_MAX_CONCURRENT_JOBS) in the worker runtime over real Redis: over the limit a job is parked
(queued, holding no worker slot, nothing re-sent in a loop), other users run at once, a user's jobs keep their
order, the limit holds under concurrent claims, and parked jobs come back when a slot frees up or their message
went missing."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from llm_service.jobs import JobStore
from tests.tasks.support import run_in_thread, submit

ANN, BOB = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def limited(runtime):
    runtime.config = runtime.config.with_overrides(user_max_concurrent_jobs=2, queued_republish_seconds=0.3)
    return runtime


def test_over_the_limit_jobs_wait_without_a_slot_and_other_users_run_at_once(limited, recording_queue, gate):
    ann = [submit(limited, "slow", user_id=ANN) for _ in range(4)]
    bob = submit(limited, "slow", user_id=BOB)
    running = [run_in_thread(limited, job_id)[0] for job_id in ann[:2]]
    wait_for(lambda: all(limited.store.get(j)["status"] == "processing" for j in ann[:2]))
    assert limited.run_job(ann[2]) == {"job_id": ann[2], "skipped": "parked"}  # returns at once: no slot held
    assert limited.run_job(ann[3]) == {"job_id": ann[3], "skipped": "parked"}
    bob_thread, _ = run_in_thread(limited, bob)
    wait_for(lambda: limited.store.get(bob)["status"] == "processing")
    assert [limited.store.get(j)["status"] for j in ann] == ["processing", "processing", "queued", "queued"]
    assert recording_queue.jobs == []  # parked jobs are not re-sent while the user is at the limit

    gate.release.set()
    for thread in [*running, bob_thread]:
        thread.join(10)
    assert [job_id for job_id, _ in recording_queue.jobs] == ann[2:]  # handed back, in order, once each
    for job_id in ann[2:]:
        assert limited.run_job(job_id)["status"] == "completed"
    assert limited.store.count_parked() == 0


def test_a_users_jobs_keep_their_order(limited, recording_queue):
    limited.config = limited.config.with_overrides(user_max_concurrent_jobs=1)
    first, second, third = (submit(limited, user_id=ANN) for _ in range(3))
    store = limited.store
    claimed = store.claim(first, worker_id="w", lease_seconds=5, user_limit=1)
    assert claimed.outcome == "claimed"
    assert store.claim(second, worker_id="w", lease_seconds=5, user_limit=1).outcome == "parked"
    assert store.claim(third, worker_id="w", lease_seconds=5, user_limit=1).outcome == "parked"
    store.finish(first, claimed.token, status="completed", result={}, error=None, error_message=None)
    # the third job's message arrives first: it must wait for the second
    assert store.claim(third, worker_id="w", lease_seconds=5, user_limit=1).outcome == "parked"
    assert store.claim(second, worker_id="w", lease_seconds=5, user_limit=1).outcome == "claimed"


def test_the_limit_holds_under_concurrent_claims(redis_client, redis_prefix):
    stores = [JobStore(redis_client, prefix=redis_prefix) for _ in range(10)]
    jobs = [stores[0].create({"workflow_name": "wf", "user_id": ANN})["job_id"] for _ in range(10)]
    start = threading.Barrier(len(jobs))
    outcomes: dict[str, str] = {}

    def claim(store: JobStore, job_id: str) -> None:
        start.wait()
        outcomes[job_id] = store.claim(job_id, worker_id="w", lease_seconds=5, user_limit=3).outcome

    threads = [threading.Thread(target=claim, args=pair) for pair in zip(stores, jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["claimed"] * 3 + ["parked"] * 7


def test_a_parked_job_whose_release_message_was_lost_is_sent_again_by_the_sweeper(limited, recording_queue):
    store = limited.store
    first, second = submit(limited, user_id=ANN), submit(limited, user_id=ANN)
    third = submit(limited, user_id=ANN)
    claims = [store.claim(j, worker_id="dead", lease_seconds=5, user_limit=2) for j in (first, second)]
    assert store.claim(third, worker_id="w", lease_seconds=5, user_limit=2).outcome == "parked"
    # the worker finishing a job dies before handing the parked job back
    store.finish(first, claims[0].token, status="completed", result={}, error=None, error_message=None)
    time.sleep(0.35)  # QUEUED_REPUBLISH_SECONDS of the fixture
    limited.maintenance_tick(force=True)
    assert recording_queue.jobs == [(third, 0)]
    time.sleep(0.06)
    limited.maintenance_tick(force=True)
    assert recording_queue.jobs == [(third, 0)]  # not again within the period
    assert limited.run_job(third)["status"] == "completed"


def test_turning_the_limit_off_releases_every_parked_job(limited, recording_queue):
    store = limited.store
    jobs = [submit(limited, user_id=ANN) for _ in range(4)]
    for job_id in jobs:
        store.claim(job_id, worker_id="w", lease_seconds=5, user_limit=1)
    limited.config = limited.config.with_overrides(user_max_concurrent_jobs=0, queued_republish_seconds=0.01)
    time.sleep(0.05)
    limited.maintenance_tick(force=True)
    assert [job_id for job_id, _ in recording_queue.jobs] == jobs[1:]


def wait_for(check, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)
