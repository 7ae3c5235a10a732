"""Progress while a job runs: how soon a finished step shows, and what it costs a short job.

The worker runtime runs in this process against real Redis (the engine's upstreams are in-process fakes, so only
the runtime's own store traffic is measured). Two configurations, measured in the same run:

* **before**: progress saved only when a later step ends (what the runtime did until issue 7): no maintenance
  flush (``progress_delay`` = infinity);
* **after**: the default, a finished or started step waits at most ``PROGRESS_DELAY`` plus one maintenance tick.

1. Latency: 5 quick steps, then one step held for ``--hold`` seconds (a slow LLM call). Figure: the time from the
   5th step finishing until ``progress.steps_completed`` = 5 is readable in Redis (polled every 5 ms).
2. Cost: ``--jobs`` short jobs of 3 quick steps, run one after another. Figures: Redis commands and wall time per
   job (commands counted from ``INFO commandstats`` on db 12; other users of this Redis add noise, said below).

Run: ``.venv/bin/python -m bench.progress [--hold 6] [--jobs 200]`` (about 2 x hold + a few seconds).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from bench.harness import machine_summary, redis_commands
from llm_service.config import Config
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.services import Services
from llm_service.tasks.runtime import PROGRESS_DELAY, WorkerRuntime
from tests.conftest import RecordingQueue
from tests.engine.fakes import FakeService, api_step, make_engine, write_workflow

REPO = Path(__file__).resolve().parent.parent

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")  # a private server counts exactly


class Held:
    """The slow step: records when it was entered, then holds for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered_at = 0.0

    def __call__(self, params: dict, **_: object) -> dict:
        self.entered_at = time.monotonic()
        time.sleep(self.seconds)
        return {"held": self.seconds}


def build(root: Path, hold: Held, client: redis.Redis, prefix: str, delay: float) -> WorkerRuntime:
    quick = [api_step(f"q{i}") for i in range(5)]
    write_workflow(root, {"name": "slow", "steps": [*quick, api_step("llm", "held")]})
    write_workflow(root, {"name": "short", "steps": quick[:3]})
    engine = make_engine(root, FakeService("fake", echo=lambda p, **_: dict(p), held=hold))
    config = Config(redis_key_prefix=prefix, job_lease_seconds=30)
    store = JobStore(client, prefix=prefix)
    http = HttpClient(pool_size=2, user_agent="bench")
    runtime = WorkerRuntime(config, services=Services(config=config, http=http, redis=client, engine=engine,
                                                      extras={"store": store}), queue=RecordingQueue())
    runtime.progress_delay = delay
    runtime.start()
    return runtime


def latency(runtime: WorkerRuntime, hold: Held) -> float | None:
    """Seconds from the 5th quick step finishing to its progress being readable; None if never during the hold."""
    job_id = str(uuid.uuid4())
    runtime.store.create({"job_id": job_id, "workflow_name": "slow"})
    worker = threading.Thread(target=runtime.run_job, args=(job_id,))
    worker.start()
    seen = None
    while worker.is_alive():
        progress = (runtime.store.get(job_id) or {}).get("progress") or {}
        if seen is None and progress.get("steps_completed") == 5 and hold.entered_at:
            seen = time.monotonic()
        time.sleep(0.005)
    worker.join()
    return None if seen is None else max(0.0, seen - hold.entered_at)


def short_jobs(runtime: WorkerRuntime, client: redis.Redis, jobs: int) -> tuple[float, float]:
    """(Redis commands per job, milliseconds per job) for ``jobs`` short jobs run one after another."""
    ids = [str(uuid.uuid4()) for _ in range(jobs)]
    for job_id in ids:
        runtime.store.create({"job_id": job_id, "workflow_name": "short"})
    commands = redis_commands(client)
    started = time.perf_counter()
    for job_id in ids:
        runtime.run_job(job_id)
    wall = time.perf_counter() - started
    # INFO commandstats itself is one command per call; the create calls are outside the window.
    return (redis_commands(client) - commands - 1) / jobs, wall * 1000 / jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=6.0, help="seconds the slow step takes")
    parser.add_argument("--jobs", type=int, default=200, help="short jobs per configuration")
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    print(f"progress benchmark; {machine_summary()}")
    rows = {}
    for label, delay in (("before", float("inf")), ("after", PROGRESS_DELAY)):
        prefix = f"bench-progress:{uuid.uuid4().hex[:8]}"
        hold = Held(args.hold)
        with tempfile.TemporaryDirectory() as root:
            runtime = build(Path(root), hold, client, prefix, delay)
            try:
                rows[label] = (latency(runtime, hold), *short_jobs(runtime, client, args.jobs))
            finally:
                runtime.stop()
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    client.delete(*keys)
    print(f"\n{'':8} {'step visible after':>20} {'Redis cmds/short job':>22} {'ms/short job':>14}")
    for label, (seen, commands, ms) in rows.items():
        shown = f"{seen:.3f} s" if seen is not None else f"not during the {args.hold:g} s step"
        print(f"{label:8} {shown:>20} {commands:>22.2f} {ms:>14.2f}")
    before, after = rows["before"], rows["after"]
    print(f"\nshort-job cost after/before: commands x{after[1] / before[1]:.2f}, wall x{after[2] / before[2]:.2f}"
          f" (one run each; other clients of this Redis add to the command counts)")
    if after[0] is not None:
        print(f"a finished step is visible {after[0]:.2f} s after it ends, i.e. {after[0] / args.hold:.1%} of the "
              f"{args.hold:g} s slow step (before: {'never' if before[0] is None else f'{before[0]:.2f} s'})")


if __name__ == "__main__":
    main()
