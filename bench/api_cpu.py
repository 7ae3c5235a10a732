"""API CPU per submission, the API alone: ``gunicorn wsgi:app`` (one process, as ``service_throughput.py`` starts
it) takes bursts of ``POST /api/v1/workflow`` (the one-step job) from 16 keep-alive ``http.client`` connections,
with no worker running, and the API's CPU seconds (from /proc) are divided by the submissions. A benchmark, not a
test: it prints figures.

Without a worker the figure is not disturbed by the worker's CPU, so it moves less between runs than the API row
of ``service_throughput.py`` (which also shares the cores with the worker and the raw Celery side).
``--compare DIR`` starts a second API from another checkout (e.g. ``git worktree add /tmp/base main``) with the
same settings and alternates bursts between the two, so a change is measured before/after in the same run; the
ratio is per-round medians, this checkout first. ``--env NAME=VALUE`` (repeatable) sets the APIs' environment,
e.g. ``--env GUNICORN_WORKER_CLASS=gthread``.

Run: ``.venv/bin/python -m bench.api_cpu`` (about 20 s); ``--compare /path/to/other/checkout`` (about 40 s).
The jobs stay queued (no worker): every key and the Celery queue are deleted at the end.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from bench.harness import (
    ONE_STEP,
    ONE_STEP_DEFINITION,
    REPO,
    add_stack_options,
    group_pids,
    machine_summary,
    parse_env,
    process_cpu_seconds,
    scratch_dir,
    write_workflows,
)
from llm_service.sandbox import SandboxServer
from tests.integration.stack import API_SECRET, Stack, api_command, free_port


class Api:
    """One API process group started from ``checkout``, with its own key prefix and Celery queue."""

    def __init__(self, checkout: Path, workdir: Path, sandbox: SandboxServer, *, redis_url: str, workflows: Path,
                 extra_env: dict[str, str]) -> None:
        self.checkout = checkout
        self.stack = Stack(workdir, sandbox, redis_url=redis_url,
                           extra_env={"WORKFLOWS_DIR": str(workflows), **extra_env})  # its environment and names
        self.port = free_port()
        log = open(workdir / "api.log", "ab")
        self.process = subprocess.Popen(api_command(self.port), cwd=checkout, env=self.stack.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._local = threading.local()
        self._body_headers = {"Content-Type": "application/json", "X-API-Secret": API_SECRET}
        deadline = time.monotonic() + 30
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the API from {checkout} did not start; see {workdir / 'api.log'}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in group_pids(self.process.pid))

    def submit(self, index: int) -> None:
        """One POST on this thread's keep-alive connection (a new one after the server closed an idle one)."""
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.request("POST", "/api/v1/workflow", headers=self._body_headers,
                                   body=json.dumps({"workflow_name": ONE_STEP, "input_data": {"n": index}}))
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self._local.connection = None
                if attempt == 2:
                    raise
                continue
            if response.status != 202:
                raise RuntimeError(f"submit answered {response.status}: {payload[:300]!r}")
            return

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        self.stack.purge_redis()


def burst(api: Api, pool: ThreadPoolExecutor, jobs: int) -> float:
    """API CPU milliseconds per submission over ``jobs`` submissions."""
    before = api.cpu_seconds()
    list(pool.map(api.submit, range(jobs)))
    return (api.cpu_seconds() - before) / jobs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="submissions per burst (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="bursts per API, alternating (default 4)")
    parser.add_argument("--compare", type=Path, help="another checkout whose API is measured alongside")
    add_stack_options(parser, pool=False)
    args = parser.parse_args()

    root = scratch_dir()
    workflows = write_workflows(root / "workflows", {ONE_STEP: ONE_STEP_DEFINITION})
    checkouts = [REPO] + ([args.compare.resolve()] if args.compare else [])
    print(f"machine: {machine_summary()}")
    apis: list[Api] = []
    with SandboxServer() as sandbox:
        try:
            for index, checkout in enumerate(checkouts):
                apis.append(Api(checkout, root / f"api{index}", sandbox, redis_url=args.redis_url,
                                workflows=workflows, extra_env=parse_env(args.env)))
            figures: dict[Path, list[float]] = {api.checkout: [] for api in apis}
            with ThreadPoolExecutor(args.threads) as pool:
                for api in apis:
                    burst(api, pool, 200)  # warm-up: connections, definitions, scripts
                for round_index in range(args.rounds):
                    for api in apis if round_index % 2 == 0 else apis[::-1]:
                        time.sleep(0.3)
                        figures[api.checkout].append(burst(api, pool, args.jobs))
        finally:
            for api in apis:
                api.stop()
    print(f"\nAPI CPU per submission: {args.jobs} submissions x {args.rounds} rounds per API, {args.threads} "
          f"submitting threads, no worker; logs in {root}")
    first = statistics.median(figures[REPO])
    for checkout, values in figures.items():
        median = statistics.median(values)
        print(f"  {str(checkout):<40} {median:6.3f} ms (rounds: {', '.join(f'{v:.3f}' for v in values)}); "
              f"ratio to this checkout {median / first:.2f}")


if __name__ == "__main__":
    main()
