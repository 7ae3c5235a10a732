"""Where a worker's CPU goes per emergency_contacts job: the worker runtime in this process, the sandbox upstream
in another, real Redis. A profiling aid for issue 12, not a test: it prints figures and never fails on a time.

``WorkerRuntime.run_job`` runs ``--jobs`` jobs one after another (the bundled workflow without ``"execution"``, so
sequential, each at a different place so the upstream cache hides nothing), optionally under eventlet as the worker
runs (``--green``). Figures, all from the same run:

* CPU per job of this process (``time.process_time``: the caller thread and the HTTP helper's I/O threads; the
  sandbox is in its own process and not counted);
* without ``--green``, the share of that CPU spent in each part (thread CPU inside the named functions, nested
  parts subtracted; under eventlet every green thread shares one OS thread, so a waiting call would be charged
  for what the others did meanwhile, and only the total is given): the
  HTTP helper's I/O side (requests, urllib3, http.client) and caller side, the job store's claim and finish, the
  upstream cache, structured log events, the secret scrubbing of upstream answers, and the engine (the rest of
  ``Engine.run``: runner, steps, transforms);
* with ``--profile FILE``, a cProfile (thread CPU clock) of the caller thread and one of the I/O threads
  (``FILE.caller`` and ``FILE.io``, for ``python -m pstats``).

Run: ``.venv/bin/python -m bench.worker_cpu [--jobs 200] [--green] [--profile /tmp/worker]`` (about 10 s).
"""
from __future__ import annotations

import argparse
import sys

if "--green" in sys.argv:  # before anything imports socket or threading, as the eventlet worker does
    import eventlet

    eventlet.monkey_patch()

import collections
import cProfile
import functools
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import redis

from bench.harness import DEFAULT_REDIS_URL, machine_summary, write_workflows
from llm_service import services as wiring
from llm_service.cache.redis_cache import RedisCache
from llm_service.config import Config
from llm_service.engine.runner import Engine
from llm_service.http.client import HttpClient
from llm_service.integrations import base as integration_base
from llm_service.jobs.store import JobStore
from llm_service.logs import configure_logging
from llm_service.sandbox.keys import DEMO_KEYS
from llm_service.tasks import runtime as worker_runtime
from tests.conftest import RecordingQueue
from tests.integration.stack import located_input

REPO = Path(__file__).resolve().parent.parent

WORKFLOW = "emergency_contacts"


class Parts:
    """Thread CPU inside wrapped functions, each part without the wrapped parts it calls."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._local = threading.local()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            started = time.thread_time()
            stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                self.seconds[label] += spent - stack.pop()
                if stack:
                    stack[-1] += spent
        setattr(owner, name, timed)


def start_sandbox() -> tuple[subprocess.Popen, str]:
    port = 18000 + os.getpid() % 1000
    process = subprocess.Popen([sys.executable, "-m", "llm_service.sandbox", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    return process, f"http://127.0.0.1:{port}"


def build_runtime(base: str, root: Path, redis_url: str) -> worker_runtime.WorkerRuntime:
    bundled = json.loads((REPO / "workflows" / "definitions" / f"{WORKFLOW}.json").read_text())
    bundled.pop("execution", None)
    write_workflows(root, {WORKFLOW: bundled}, prompts_from=REPO / "workflows" / "prompts")
    config = Config.from_env({**DEMO_KEYS, "WEATHERAPI_BASE_URL": f"{base}/weatherapi/v1",
                              "GOOGLE_PLACES_BASE_URL": f"{base}/places", "OPENROUTER_BASE_URL": f"{base}/openai/v1",
                              "OPENAI_BASE_URL": f"{base}/openai/v1", "REDIS_URL": redis_url,
                              "REDIS_KEY_PREFIX": f"bench-worker-cpu:{uuid.uuid4().hex[:8]}",
                              "WORKFLOWS_DIR": str(root), "LLM_API_SECRET": "bench-secret-" + "0" * 24})
    configure_logging("INFO", "json", stream=open(os.devnull, "w"))  # formatted as in production, not shown
    return worker_runtime.WorkerRuntime(config, services=wiring.build(config), queue=RecordingQueue())


def run_jobs(runtime: worker_runtime.WorkerRuntime, count: int, first: int) -> Callable[[], None]:
    ids = []
    for index in range(first, first + count):
        job_id = str(uuid.uuid4())
        runtime.store.create({"job_id": job_id, "workflow_name": WORKFLOW, "input_data": located_input(index)})
        ids.append(job_id)

    def run() -> None:
        for job_id in ids:
            if runtime.run_job(job_id)["status"] != "completed":
                raise SystemExit(f"job {job_id} did not complete: {runtime.store.get(job_id)}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--green", action="store_true", help="eventlet-patch this process first, as the worker is")
    parser.add_argument("--profile", metavar="FILE", help="also write cProfile data to FILE.caller and FILE.io")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    print(f"worker CPU per {WORKFLOW} job (sequential), in-process runtime{' under eventlet' if args.green else ''}; "
          f"{machine_summary()}")
    sandbox, base = start_sandbox()
    try:
        runtime = build_runtime(base, Path(tempfile.mkdtemp()), args.redis_url)
        run_jobs(runtime, 5, 10_000)()  # warm: connections, scripts, definitions
        plain = run_jobs(runtime, args.jobs, 0)
        started = time.process_time()
        plain()
        per_job = (time.process_time() - started) * 1000 / args.jobs
        print(f"\nCPU per job: {per_job:.2f} ms (this process, {args.jobs} jobs; the sandbox upstream not counted)")
        if not args.green:
            breakdown(runtime, args.jobs)
        if args.profile:
            profile(runtime, args.jobs, args.profile)
        runtime.stop()
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{runtime.config.redis_key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        sandbox.terminate()


def breakdown(runtime: worker_runtime.WorkerRuntime, jobs: int) -> None:
    parts = Parts()
    for owner, name, label in (
                (HttpClient, "_run", "HTTP helper, I/O thread (requests, urllib3)"),
                (HttpClient, "request", "HTTP helper, caller side"),
                (JobStore, "claim", "job store: claim"), (JobStore, "finish", "job store: finish"),
                (RedisCache, "get", "upstream cache: get"), (RedisCache, "set", "upstream cache: set"),
                (integration_base, "scrub_parsed_json", "scrubbing upstream answers"),
                (worker_runtime, "event", "log events"),
                (Engine, "run", "engine: runner, steps, transforms"),
                (worker_runtime.WorkerRuntime, "run_job", "worker runtime (the rest)")):
        parts.wrap(owner, name, label)
    run_jobs(runtime, jobs, jobs)()
    total = sum(parts.seconds.values())
    print(f"{'part':48} {'ms/job':>7} {'share':>6}")
    for label, seconds in parts.seconds.most_common():
        print(f"{label:48} {seconds * 1000 / jobs:7.2f} {seconds / total:6.1%}")


def profile(runtime: worker_runtime.WorkerRuntime, jobs: int, path: str) -> None:
    caller, io = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
    perform = HttpClient._perform
    HttpClient._perform = lambda self, *a, **k: io.runcall(perform, self, *a, **k)  # one I/O call at a time
    try:
        caller.runcall(run_jobs(runtime, jobs, 2 * jobs))
    finally:
        HttpClient._perform = perform
    caller.dump_stats(f"{path}.caller")
    io.dump_stats(f"{path}.io")
    print(f"\nprofiles: {path}.caller, {path}.io (python -m pstats FILE, then sort tottime)")


if __name__ == "__main__":
    main()
