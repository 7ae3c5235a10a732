"""Per-user fairness (USER_MAX_CONCURRENT_JOBS): how long a light user waits behind a heavy one. A benchmark, not a
test: it prints figures.

One user submits 200 jobs, then another submits 5; 10 worker slots run them. Each job is one upstream call of
50 ms. Measured: when the light user's 5 jobs are all done, and when everything is done, without the limit and
with USER_MAX_CONCURRENT_JOBS=2, as ratios to the baseline of the light user's 5 jobs on an idle service (same
run). Only the broker is simulated (an in-process FIFO queue consumed by 10 threads, as kombu's Redis queue is
FIFO within a priority); claims, parking, releases and job records go through the real worker runtime, its Lua
scripts and Redis (db 14, a unique prefix, removed afterwards).

Run: ``.venv/bin/python -m bench.fairness`` (about 10 s).
"""
from __future__ import annotations

import queue
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from llm_service.config import Config
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.services import Services
from llm_service.tasks.runtime import WorkerRuntime
from tests.engine.fakes import FakeService, api_step, make_engine, write_workflow

REPO = Path(__file__).resolve().parent.parent

REDIS_URL = "redis://127.0.0.1:6379/14"
SLOTS, HEAVY_JOBS, LIGHT_JOBS, CALL_SECONDS, LIMIT = 10, 200, 5, 0.05, 2


class FifoBroker:
    """The JobQueue the runtime publishes to; ``SLOTS`` threads take messages in order and run them."""

    def __init__(self, runtime_ref: list) -> None:
        self.messages: queue.Queue = queue.Queue()
        self.runtime_ref = runtime_ref

    def enqueue(self, job_id: str, *, priority: int) -> None:
        self.messages.put(job_id)

    def enqueue_webhook(self, *args, **kwargs) -> None:
        pass

    def revoke(self, job_id: str) -> None:
        pass

    def workers(self, timeout: float = 1.0) -> int:
        return SLOTS

    def backlog(self) -> int:
        return self.messages.qsize()

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job_id = self.messages.get(timeout=0.05)
            except queue.Empty:
                continue
            self.runtime_ref[0].run_job(job_id)


def scenario(client: redis.Redis, root: Path, *, limit: int, heavy: int) -> tuple[float, float]:
    """Seconds from the first submission until the light user's jobs are done, and until all jobs are done."""
    prefix = f"bench-fair:{uuid.uuid4().hex[:8]}"
    service = FakeService("fake", work=lambda params, **_: time.sleep(CALL_SECONDS) or {"ok": True})
    config = Config(redis_key_prefix=prefix, user_max_concurrent_jobs=limit, sweeper_interval_seconds=3600)
    http = HttpClient(pool_size=2, user_agent="bench")
    store = JobStore(client, prefix=prefix)
    services = Services(config=config, http=http, redis=client, engine=make_engine(root, service),
                        extras={"store": store})
    runtime_ref: list = []
    broker = FifoBroker(runtime_ref)
    runtime_ref.append(WorkerRuntime(config, services=services, queue=broker))
    stop = threading.Event()
    threads = [threading.Thread(target=broker.serve, args=(stop,), daemon=True) for _ in range(SLOTS)]
    heavy_user, light_user = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        started = time.monotonic()
        jobs = [(heavy_user, store.create({"workflow_name": "one_call", "user_id": heavy_user})["job_id"])
                for _ in range(heavy)]
        jobs += [(light_user, store.create({"workflow_name": "one_call", "user_id": light_user})["job_id"])
                 for _ in range(LIGHT_JOBS)]
        for _, job_id in jobs:
            broker.enqueue(job_id, priority=0)
        for thread in threads:
            thread.start()
        light_done = all_done = None
        while all_done is None:
            statuses = {job_id: (store.get(job_id) or {}).get("status") for _, job_id in jobs}
            now = time.monotonic() - started
            if light_done is None and all(statuses[j] == "completed" for u, j in jobs if u == light_user):
                light_done = now
            if all(status == "completed" for status in statuses.values()):
                all_done = now
            time.sleep(0.01)
        return light_done, all_done
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        http.close()
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


def main() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_workflow(root, {"name": "one_call", "steps": [api_step("call", "work")]})
        baseline, _ = scenario(client, root, limit=0, heavy=0)
        unlimited = scenario(client, root, limit=0, heavy=HEAVY_JOBS)
        limited = scenario(client, root, limit=LIMIT, heavy=HEAVY_JOBS)
    client.close()
    print(f"{SLOTS} slots, {HEAVY_JOBS} jobs of one user then {LIGHT_JOBS} of another, {CALL_SECONDS * 1000:.0f} ms "
          "per job")
    print(f"baseline: the light user's {LIGHT_JOBS} jobs alone on an idle service: {baseline:.2f} s (= 1.0)")
    for label, (light, total) in (("no limit", unlimited), (f"USER_MAX_CONCURRENT_JOBS={LIMIT}", limited)):
        print(f"{label:28s} light user done at {light / baseline:6.1f}x baseline; all {HEAVY_JOBS + LIGHT_JOBS} "
              f"jobs done at {total / baseline:6.1f}x baseline")


if __name__ == "__main__":
    main()
