"""Service throughput: trivial one-step jobs through the API and worker, against no-op Celery tasks. A benchmark,
not a test: it prints figures, as ratios to a baseline measured in the same run.

* Ours: N jobs of a one-step transform workflow (``bench_one_step``, written to a temporary workflows directory),
  each submitted with ``POST /api/v1/workflow`` to the real API (``gunicorn wsgi:app``) and run by the real worker
  (``celery -A worker worker --pool=eventlet --concurrency=C``), both started by ``tests.integration.stack.Stack``,
  the integration tests' harness: the very commands the tests and users run.
* Baseline: N no-op tasks of ``bench/noop_app.py`` (the service's own ``make_celery`` settings: same broker, pool,
  concurrency, prefetch and acks), published with ``send_task`` as fast as possible.

Both are submitted by the same pool of threads and timed from the first submission to the last completion seen
in Redis; rounds alternate baseline and ours, and the ratio ours/raw is taken per round (then the median). CPU per
process (from /proc) and Redis commands per job say where the time goes; a short MONITOR trace then shows which
process sends which Redis commands (``--trace-jobs 0`` skips it). Issue target: ratio >= 0.5.

Run: ``.venv/bin/python -m bench.service_throughput`` (about 30 s); ``--jobs 3000 --rounds 5`` for a longer run;
``--env LOG_LEVEL=warning`` (repeatable) passes settings to the service's processes for experiments.
"""
from __future__ import annotations

import argparse
import statistics

from bench.harness import (
    ONE_STEP,
    ONE_STEP_DEFINITION,
    Burst,
    CommandTrace,
    RawCelery,
    Service,
    add_stack_options,
    alternate,
    idle_latency,
    machine_summary,
    median_burst,
    parse_env,
    redis_version,
    run_burst,
    scratch_dir,
    start_workers,
    warm_up,
    write_workflows,
)
from llm_service.sandbox import SandboxServer

TARGET_RATIO = 0.5
ROLES = ("bench", "api", "worker", "redis")
ROLE_NOTES = {"bench": "submitting client (this process)", "api": "API (gunicorn, 1 process)",
              "worker": "worker process(es)", "redis": "redis-server (whole server)"}


def print_cpu_table(raw: Burst, ours: Burst) -> None:
    print("  CPU per job (ms) and cores kept busy, in the median bursts:")
    print(f"    {'process':<36}{'raw ms/job':>11}{'raw cores':>11}{'ours ms/job':>13}{'ours cores':>12}")
    for role in ROLES:
        raw_ms = f"{raw.cpu_ms_per_job(role):.2f}" if role in raw.cpu else "-"
        raw_cores = f"{raw.cores(role):.2f}" if role in raw.cpu else "-"
        print(f"    {ROLE_NOTES[role]:<36}{raw_ms:>11}{raw_cores:>11}{ours.cpu_ms_per_job(role):>13.2f}"
              f"{ours.cores(role):>12.2f}")
    total_raw = sum(raw.cpu.values()) / raw.jobs * 1000
    total_ours = sum(ours.cpu.values()) / ours.jobs * 1000
    print(f"    {'total':<36}{total_raw:>11.2f}{sum(raw.cpu.values()) / raw.wall:>11.2f}{total_ours:>13.2f}"
          f"{sum(ours.cpu.values()) / ours.wall:>12.2f}")


TRACE_ORDER = ("bench", "api", "worker", "lua", "other")
TRACE_NOTES = {"bench": "bench (polling)", "lua": "inside Lua scripts", "other": "closed sockets"}


def print_trace(label: str, table: dict[str, dict[str, float]]) -> None:
    for role in sorted(table, key=lambda r: TRACE_ORDER.index(r) if r in TRACE_ORDER else len(TRACE_ORDER)):
        commands = table[role]
        detail = ", ".join(f"{name} {count:.2g}" for name, count in sorted(commands.items(), key=lambda kv: -kv[1]))
        print(f"    {label:<6}{TRACE_NOTES.get(role, role):<20}{sum(commands.values()):>6.1f}  {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per burst (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per side, alternating (default 3)")
    parser.add_argument("--concurrency", type=int, default=100, help="worker -c (default 100, as docker-compose)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes per side (default 1)")
    parser.add_argument("--trace-jobs", type=int, default=50, help="jobs in the MONITOR trace (0 = skip)")
    add_stack_options(parser)
    args = parser.parse_args()

    root = scratch_dir()
    workflows = write_workflows(root / "workflows", {ONE_STEP: ONE_STEP_DEFINITION})
    print(f"machine: {machine_summary()}")
    with SandboxServer() as sandbox:  # unused by the one-step job; the stack wants upstream URLs to point at
        service = Service(root / "service", sandbox, redis_url=args.redis_url, workflows_dir=workflows,
                          extra_env=parse_env(args.env), submit_threads=args.threads)
        raw = RawCelery(root / "raw", sandbox, redis_url=args.redis_url)
        try:
            print(f"redis {redis_version(service.redis)} at {args.redis_url}; logs in {root}")
            start_workers([raw, service], args.pool, args.concurrency, args.processes)
            warm_up(raw)
            warm_up(service)
            idle = {side.label: idle_latency(side) for side in (raw, service)}
            results = alternate([raw, service], args.jobs, args.rounds, threads=args.threads)
            report(args, results[raw.label], results[service.label], idle[raw.label], idle[service.label])
            if args.trace_jobs:
                trace(args, raw, service)
        finally:
            service.stop()
            raw.stop()


def report(args: argparse.Namespace, raw_bursts: list[Burst], our_bursts: list[Burst], raw_idle: float,
           our_idle: float) -> None:
    ratios = [ours.rate / raw.rate for raw, ours in zip(raw_bursts, our_bursts)]
    raw, ours = median_burst(raw_bursts), median_burst(our_bursts)
    print(f"\nservice throughput: {args.jobs} jobs x {args.rounds} rounds per side, --pool={args.pool} "
          f"--concurrency={args.concurrency}, {args.processes} worker process(es), {args.threads} submitting "
          "threads")
    print(f"  {'':<34}{'jobs/s':>8}{'wall s':>9}{'submit s':>10}{'mean latency ms':>17}"
          f"{'longest pause ms':>18}{'failed':>8}")
    for label, burst in (("raw Celery, no-op task (baseline)", raw), ("llm-service, one-step job", ours)):
        print(f"  {label:<34}{burst.rate:>8.0f}{burst.wall:>9.2f}{burst.submit_wall:>10.2f}"
              f"{burst.mean_latency * 1000:>17.0f}{burst.longest_pause * 1000:>18.0f}{burst.failed:>8}")
    print(f"  per round jobs/s: raw {', '.join(f'{b.rate:.0f}' for b in raw_bursts)}; "
          f"ours {', '.join(f'{b.rate:.0f}' for b in our_bursts)}")
    print(f"  RATIO ours/raw = {statistics.median(ratios):.2f} (median of rounds: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}); target >= {TARGET_RATIO}")
    print(f"  one job alone (submit -> completion seen, median of 5): raw {raw_idle * 1000:.1f} ms, ours "
          f"{our_idle * 1000:.1f} ms ({our_idle / raw_idle:.1f}x)")
    print_cpu_table(raw, ours)
    print(f"  Redis commands per job (INFO commandstats, whole server, Lua-internal calls included): "
          f"raw {raw.redis_commands / raw.jobs:.1f}, ours {ours.redis_commands / ours.jobs:.1f}")


def trace(args: argparse.Namespace, raw: RawCelery, service: Service) -> None:
    print(f"  Redis commands per job by sender (MONITOR trace of {args.trace_jobs} jobs per side, not timed):")
    for target in (raw, service):
        with CommandTrace(args.redis_url) as recording:
            run_burst(target, args.trace_jobs, threads=4)
        print_trace("raw" if target is raw else "ours", recording.per_job(target.cpu_groups(), args.trace_jobs))


if __name__ == "__main__":
    main()
