"""Open event streams vs. everything else the API serves: do hundreds of open ``/jobs/<id>/events`` streams slow
down status polls? A benchmark, not a test: it prints figures as ratios to a baseline measured in the same run.

The real service (``gunicorn wsgi:app`` with ``--workers 1``: every stream lands on the one API process, and the
eventlet worker), started by ``tests.integration.stack.Stack``. ``--jobs`` emergency_contacts jobs are kept running
(the sandbox's chat API holds every LLM call for ``--hold`` seconds). Then:

1. **baseline**: ``--pollers`` client threads poll ``/api/v1/status/<id>`` of the running jobs, ``--polls`` requests
   in all, with no stream open: p50/p95 latency.
2. **with streams**: ``--streams`` streams are opened over those jobs (each in its own client thread, reading every
   line) and the same polls are repeated while they stay open: p50/p95 again, and the ratio to the baseline.

The stream readers count what they receive (``retry``, events, keep-alives every ``EVENTS_KEEPALIVE_SECONDS`` = 2 s
here), so the figures show the streams were live, not merely queued. ``--worker-class gthread`` runs the old
threaded API worker (16 threads) for comparison: there the streams take every thread and polls wait.

Run: ``.venv/bin/python -m bench.event_streams`` (about 40 s).
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.harness import machine_summary, scratch_dir
from llm_service.sandbox import SandboxServer
from tests.integration.stack import API_SECRET, WEBHOOK_SECRET, Stack, located_input

CHAT = "/openai/v1/chat/completions"


class Reader:
    """One open stream in its own thread: counts lines until the connection ends."""

    def __init__(self, url: str) -> None:
        self.url, self.connected, self.events, self.keepalives, self.error = url, threading.Event(), 0, 0, None
        self.response: requests.Response | None = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            self.response = requests.get(self.url, headers={"X-API-Secret": API_SECRET}, stream=True, timeout=120)
            for line in self.response.iter_lines(chunk_size=None, decode_unicode=True):
                if line.startswith("retry:"):
                    self.connected.set()
                elif line.startswith("event:"):
                    self.events += 1
                elif line.startswith(": keep-alive"):
                    self.keepalives += 1
        except Exception as exc:  # the stack stopping ends every stream
            self.error = type(exc).__name__


def poll(stack: Stack, job_ids: list[str], total: int, pollers: int) -> list[float]:
    """Latencies (seconds) of ``total`` status requests from ``pollers`` threads, each with its own session."""
    local = threading.local()

    def one(index: int) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["X-API-Secret"] = API_SECRET
        started = time.perf_counter()
        response = session.get(f"{stack.api_url}/api/v1/status/{job_ids[index % len(job_ids)]}", timeout=60)
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    with ThreadPoolExecutor(pollers) as pool:
        return list(pool.map(one, range(total)))


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--polls", type=int, default=600)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds every LLM call is held")
    parser.add_argument("--worker-class", default="gevent", choices=("gevent", "gthread"))
    args = parser.parse_args()
    print(f"event-stream benchmark; {machine_summary()}")
    with SandboxServer(webhook_secret=WEBHOOK_SECRET, latency_ms=20) as sandbox:
        stack = Stack(scratch_dir() / "streams", sandbox, extra_env={
            "EVENTS_KEEPALIVE_SECONDS": "2", "GUNICORN_WORKER_CLASS": args.worker_class})
        try:
            run(stack, sandbox, args)
        finally:
            stack.stop()


def run(stack: Stack, sandbox: SandboxServer, args: argparse.Namespace) -> None:
    stack.start_worker("eventlet", args.jobs + 10)
    stack.start_api()
    stack.wait_for_workers()
    sandbox.add_fault(CHAT, "timeout", delay=args.hold, count=-1)
    job_ids = [stack.submit(input_data=located_input(i), webhook=None) for i in range(args.jobs)]
    stack.wait(lambda: all(stack.status(j)["status"] == "processing" for j in job_ids),
               f"{args.jobs} jobs to be running", 60)
    poll(stack, job_ids, 50, args.pollers)  # warm-up: connections, imports, scripts
    base = poll(stack, job_ids, args.polls, args.pollers)

    opened = time.perf_counter()
    readers = [Reader(f"{stack.api_url}/api/v1/jobs/{job_ids[i % len(job_ids)]}/events")
               for i in range(args.streams)]
    connected = sum(r.connected.wait(max(0.1, 30 - (time.perf_counter() - opened))) for r in readers)
    open_seconds = time.perf_counter() - opened
    loaded = poll(stack, job_ids, args.polls, args.pollers) if connected == len(readers) else []
    time.sleep(2.5)  # at least one keep-alive period with every stream open
    running = sum(stack.status(j)["status"] == "processing" for j in job_ids)

    print(f"\nAPI: gunicorn --workers 1, worker class {args.worker_class}; {args.jobs} running jobs "
          f"({running} still running at the end), {args.streams} streams, {args.polls} status polls from "
          f"{args.pollers} threads per phase\n")
    print(f"{'phase':<22}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'no streams':<22}{statistics.median(base) * 1000:>10.1f}{p95(base) * 1000:>10.1f}")
    if loaded:
        print(f"{f'{args.streams} open streams':<22}{statistics.median(loaded) * 1000:>10.1f}"
              f"{p95(loaded) * 1000:>10.1f}")
        print(f"\nstatus p95 with streams / without: x{p95(loaded) / p95(base):.2f} "
              f"(p50 x{statistics.median(loaded) / statistics.median(base):.2f})")
    else:
        print(f"{f'{args.streams} open streams':<22}{'-':>10}{'-':>10}   (not measured: streams never all connected)")
    print(f"streams connected: {connected}/{len(readers)} within {open_seconds:.1f} s; events received "
          f"{sum(r.events for r in readers)}, keep-alives {sum(r.keepalives for r in readers)} "
          f"(min per stream {min(r.keepalives for r in readers)}); stream errors "
          f"{sum(r.error is not None for r in readers)}")


if __name__ == "__main__":
    main()
