"""Fan-out: 100 concurrent emergency_contacts jobs against an upstream with 200 ms latency, on one worker with
--concurrency 100. A benchmark, not a test: it prints figures, as ratios to baselines measured in the same run.

Issue target: wall time from the first submission to the last completion within 2x the per-job critical path, and
at most concurrency + 10% distinct upstream TCP connections.

* The per-job critical path is two dependent round trips (weather and the three Places searches in parallel, then
  the LLM call): 2 x latency in theory, and measured directly in this run (one GET to the fake WeatherAPI, then
  one POST to the fake chat API, over a kept-alive connection). A single job alone through the whole service is
  measured too, so queueing, the API and the job store show up as their own figure.
* Jobs go through the real API (``gunicorn wsgi:app``) to the real worker (``celery -A worker worker
  --pool=eventlet --concurrency=100``), both started by ``tests.integration.stack.Stack``, the integration tests'
  harness: the very commands the tests and users run. Every job asks about a different place
  (``tests.integration.stack.located_input``) so the upstream cache cannot hide calls.
* Both execution modes are measured: the bundled definition says ``"execution": "dependencies"`` (which wins over
  ``WORKFLOW_EXECUTION``), so the sequential figures use a copy of it without that key (same prompts, symlinked).
  The worker is restarted for each mode, so the sandbox's connection count covers exactly one worker's life.

Run: ``.venv/bin/python -m bench.fanout`` (about 30 s); ``--jobs 200 --concurrency 200`` for a bigger run.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import requests

from bench.harness import (
    REPO,
    Service,
    add_stack_options,
    machine_summary,
    median_seconds,
    parse_env,
    redis_version,
    run_burst,
    scratch_dir,
    start_workers,
    write_workflows,
)
from llm_service.sandbox import SandboxServer
from tests.integration.stack import located_input

WORKFLOW = "emergency_contacts"
SEQUENTIAL = "emergency_contacts_sequential"
MODES = {"dependencies": WORKFLOW, "sequential": SEQUENTIAL}
ROUND_TRIPS = {"dependencies": 2, "sequential": 5}  # weather, 3 x Places, LLM: in parallel or one by one
WALL_TARGET = 2.0
CONNECTION_HEADROOM = 1.10


def emergency_workflows(root: Path) -> Path:
    """The bundled definition as is, plus a copy without ``"execution"`` (so it runs sequentially)."""
    bundled = json.loads((REPO / "workflows" / "definitions" / f"{WORKFLOW}.json").read_text())
    sequential = {key: value for key, value in bundled.items() if key != "execution"}
    sequential["name"] = SEQUENTIAL
    return write_workflows(root, {WORKFLOW: bundled, SEQUENTIAL: sequential},
                           prompts_from=REPO / "workflows" / "prompts")


def two_round_trips(sandbox: SandboxServer, repeat: int = 5) -> float:
    """Median seconds of the critical path done by hand: one upstream fetch, then one LLM call."""
    urls = sandbox.base_urls()
    with requests.Session() as session:
        def once() -> None:
            session.get(f"{urls['WEATHERAPI_BASE_URL']}/current.json", params={"key": "k", "q": "47.6,-122.3"},
                        timeout=30).raise_for_status()
            session.post(f"{urls['OPENROUTER_BASE_URL']}/chat/completions", headers={"Authorization": "Bearer k"},
                         json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                         timeout=30).raise_for_status()
        return median_seconds(once, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100, help="-c of each worker process (default 100)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--single", type=int, default=3, help="single-job runs per mode (median)")
    parser.add_argument("--modes", default="dependencies,sequential")
    add_stack_options(parser)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s): {', '.join(sorted(unknown))}")

    root = scratch_dir()
    workflows = emergency_workflows(root / "workflows")
    print(f"machine: {machine_summary()}")
    latency = args.latency_ms / 1000
    with SandboxServer(latency_ms=args.latency_ms) as sandbox:
        critical = two_round_trips(sandbox)
        service = Service(root / "service", sandbox, redis_url=args.redis_url, workflows_dir=workflows,
                          extra_env=parse_env(args.env), submit_threads=args.threads)
        rows = []
        try:
            print(f"redis {redis_version(service.redis)} at {args.redis_url}; logs in {root}")
            next_index = 0
            for mode in modes:
                start_workers([service], args.pool, args.concurrency, args.processes)
                sandbox.reset()  # the new worker's connections, and nothing else, from here on
                service.workflow = MODES[mode]
                base, next_index = next_index, next_index + args.single + args.jobs
                singles = []
                for k in range(args.single):
                    service.make_input = lambda i, n=base + k: located_input(n)
                    singles.append(run_burst(service, 1, threads=1).wall)
                service.make_input = lambda i, base=base + args.single: located_input(base + i)
                burst = run_burst(service, args.jobs, threads=args.threads)
                rows.append((mode, statistics.median(singles), burst, sandbox.stats()))
        finally:
            service.stop()
    report(args, latency, critical, rows)


def report(args: argparse.Namespace, latency: float, critical: float, rows: list) -> None:
    limit = int(args.concurrency * args.processes * CONNECTION_HEADROOM)
    print(f"\nfan-out: {args.jobs} emergency_contacts jobs at once ({args.threads} submitting threads), sandbox "
          f"upstream latency {args.latency_ms:.0f} ms, {args.processes} worker process(es) --pool={args.pool} "
          f"--concurrency={args.concurrency}")
    print(f"  per-job critical path: 2 round trips = {2 * latency * 1000:.0f} ms in theory; measured directly "
          f"{critical * 1000:.0f} ms (baseline)")
    print(f"  {'mode':<14}{'one job':>9}{'burst wall':>12}{'submit':>8}{'wall/critical':>15}{'wall/one job':>14}"
          f"{'conns':>7}{'<= ' + str(limit):>8}{'max in flight':>15}{'requests':>10}{'failed':>8}")
    for mode, single, burst, stats in rows:
        print(f"  {mode:<14}{single * 1000:>7.0f}ms{burst.wall * 1000:>10.0f}ms{burst.submit_wall * 1000:>6.0f}ms"
              f"{burst.wall / critical:>14.2f}x{burst.wall / single:>13.2f}x{stats['connections_opened']:>7}"
              f"{'yes' if stats['connections_opened'] <= limit else 'NO':>8}{stats['max_in_flight']:>15}"
              f"{stats['requests']:>10}{burst.failed:>8}")
    for mode, _, burst, _ in rows:
        busy = ", ".join(f"{role} {burst.cores(role):.2f}" for role in ("api", "worker", "redis", "bench"))
        service_ms = sum(burst.cpu_ms_per_job(role) for role in ("api", "worker", "redis"))
        print(f"  {mode}: cores kept busy during the burst: {busy} (bench = this process: the submitting client "
              f"and the sandbox upstream); CPU per job: service {service_ms:.1f} ms (worker "
              f"{burst.cpu_ms_per_job('worker'):.1f}), bench {burst.cpu_ms_per_job('bench'):.1f} ms; longest pause "
              f"between completions {burst.longest_pause * 1000:.0f} ms")
    print(f"  targets: wall/critical <= {WALL_TARGET:.1f}x; connections <= concurrency + 10% = {limit}. "
          f"Sequential runs {ROUND_TRIPS['sequential']} round trips per job, so its floor is "
          f"{ROUND_TRIPS['sequential'] / ROUND_TRIPS['dependencies']:.1f}x the critical path. "
          "Connections and requests count the single jobs too.")


if __name__ == "__main__":
    main()
