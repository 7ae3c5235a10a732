"""Scaling: throughput and latency against worker concurrency and worker processes, each as a ratio to raw Celery
measured in the same run. A benchmark, not a test: it prints figures.

For every cell of (worker processes) x (--concurrency per process), the service's workers and the baseline's
workers are restarted with the same pool, concurrency and process count, and both sides get the same bursts:

* ``trivial``: one-step transform jobs (``bench_one_step``) against no-op tasks: the service's own cost per job.
* ``upstream``: ``hello`` jobs (one LLM call to the sandbox upstream, ``--latency-ms`` each) against no-op tasks
  that sleep as long: how far concurrency carries jobs that mostly wait, and where CPU takes over.

Ours goes through the real API (``gunicorn wsgi:app``, one process) and worker(s) (``celery -A worker worker``),
started by ``tests.integration.stack.Stack``, the integration tests' harness: the very commands the tests and users
run. The baseline is ``bench/noop_app.py`` on the service's own Celery settings (see ``bench/harness.py`` for how
bursts, latency and CPU are measured). Throughput ratio = ours/raw (1.0 = as fast as bare Celery); latency ratio =
ours/raw (1.0 = no added latency).

Upstream bursts are one wave (as many jobs as job slots) by default, so every job can wait at the same time and the
ideal wall is one latency. ``--waves N`` makes them N times deeper, which shows how a worker refills its slots:
with a green pool (eventlet, gevent) on the Redis transport, once every slot is taken the worker fetches more only
when its consumer's 2-second poll times out (Celery's ``synloop`` calls ``drain_events(timeout=2.0)``, and kombu
does not poll the queue while the prefetch window is full), on both sides alike; ``--pool threads`` does not.

Run: ``.venv/bin/python -m bench.scaling`` (quick, about 100 s: one burst per side per cell);
``--full`` for three alternating bursts per side and 1000-job trivial bursts (about 5 minutes);
``--pool threads --concurrency 10 --processes 1 --workloads upstream --waves 4`` for the refill effect.
"""
from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass

from bench.harness import (
    ONE_STEP,
    ONE_STEP_DEFINITION,
    REPO,
    Burst,
    RawCelery,
    Service,
    add_stack_options,
    alternate,
    machine_summary,
    median_burst,
    parse_env,
    redis_version,
    scratch_dir,
    start_workers,
    warm_up,
    write_workflows,
)
from llm_service.sandbox import SandboxServer

HELLO = "hello"
REFILL_SECONDS = 2.2  # a green-pool worker with a full prefetch window polls again within 2 s
WORKLOADS = ("trivial", "upstream")


@dataclass
class Cell:
    workload: str
    processes: int
    concurrency: int
    raw: Burst
    ours: Burst
    ratios: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def burst_size(args: argparse.Namespace, workload: str, slots: int) -> int:
    """Trivial bursts have a fixed size; upstream bursts fill every job slot ``--waves`` times."""
    return args.jobs if workload == "trivial" else args.waves * slots


def warm_up_size(workload: str, concurrency: int) -> int:
    """Enough to load everything; fewer upstream jobs than one process's slots, so the warm-up never fills a prefetch
    window (which would leave that worker waiting for its next consumer poll when the measured burst starts)."""
    return 20 if workload == "trivial" else max(1, min(20, concurrency - 1))


def configure(workload: str, service: Service, raw: RawCelery, latency: float) -> None:
    if workload == "trivial":
        service.workflow, service.make_input, raw.sleep_seconds = ONE_STEP, (lambda i: {"n": i}), 0.0
    else:
        service.workflow, service.make_input, raw.sleep_seconds = HELLO, (lambda i: {"name": f"n{i}"}), latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="3 rounds, bigger bursts (about 5 minutes)")
    parser.add_argument("--concurrency", default="10,50,100,200", help="-c values (default 10,50,100,200)")
    parser.add_argument("--processes", default="1,2", help="worker process counts (default 1,2)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--latency-ms", type=float, default=200, help="upstream latency (default 200)")
    parser.add_argument("--waves", type=int, default=1, help="upstream burst = waves x job slots (default 1)")
    add_stack_options(parser)
    args = parser.parse_args()
    args.rounds = 3 if args.full else 1
    args.jobs = 1000 if args.full else 300  # trivial burst size
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    process_counts = [int(p) for p in args.processes.split(",") if p.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if set(workloads) - set(WORKLOADS):
        raise SystemExit(f"workloads are {', '.join(WORKLOADS)}")

    root = scratch_dir()
    hello = json.loads((REPO / "workflows" / "definitions" / f"{HELLO}.json").read_text())
    workflows = write_workflows(root / "workflows", {ONE_STEP: ONE_STEP_DEFINITION, HELLO: hello},
                                prompts_from=REPO / "workflows" / "prompts")
    print(f"machine: {machine_summary()}")
    latency = args.latency_ms / 1000
    cells: list[Cell] = []
    with SandboxServer(latency_ms=args.latency_ms) as sandbox:
        service = Service(root / "service", sandbox, redis_url=args.redis_url, workflows_dir=workflows,
                          extra_env=parse_env(args.env), submit_threads=args.threads)
        raw = RawCelery(root / "raw", sandbox, redis_url=args.redis_url)
        try:
            print(f"redis {redis_version(service.redis)} at {args.redis_url}; logs in {root}")
            for processes in process_counts:
                for concurrency in concurrencies:
                    start_workers([raw, service], args.pool, concurrency, processes)
                    for workload in workloads:
                        configure(workload, service, raw, latency)
                        warm_up(raw, warm_up_size(workload, concurrency))
                        warm_up(service, warm_up_size(workload, concurrency))
                        jobs = burst_size(args, workload, concurrency * processes)
                        results = alternate([raw, service], jobs, args.rounds, threads=args.threads,
                                            pause=REFILL_SECONDS if workload == "upstream" else 0.0)
                        raw_bursts, our_bursts = results[raw.label], results[service.label]
                        cell = Cell(workload, processes, concurrency, median_burst(raw_bursts),
                                    median_burst(our_bursts),
                                    [o.rate / r.rate for r, o in zip(raw_bursts, our_bursts)])
                        cells.append(cell)
                        print(f"  done: {workload} {processes}x{concurrency}: ratio {cell.ratio:.2f}", flush=True)
        finally:
            service.stop()
            raw.stop()
    report(args, cells)


def rate_text(rate: float) -> str:
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def report(args: argparse.Namespace, cells: list[Cell]) -> None:
    print(f"\nscaling: --pool={args.pool}, {args.rounds} burst(s) per side per cell (median), {args.threads} "
          f"submitting threads; API = 1 gunicorn process")
    for workload in dict.fromkeys(c.workload for c in cells):
        rows = [c for c in cells if c.workload == workload]
        if workload == "trivial":
            print(f"\n  trivial: {args.jobs} one-step jobs vs {args.jobs} no-op tasks per burst")
        else:
            print(f"\n  upstream: hello jobs (one LLM call, {args.latency_ms:.0f} ms upstream latency) vs no-op tasks "
                  f"sleeping {args.latency_ms:.0f} ms; bursts of {args.waves} x job slots (= -c x processes); "
                  "ideal rate = slots / latency")
        print(f"    {'procs':>5}{'-c':>5}{'jobs':>6}{'ideal/s':>8}{'raw/s':>8}{'ours/s':>8}{'ratio':>7}"
              f"{'raw lat ms':>12}{'ours lat ms':>13}{'lat ratio':>11}   "
              f"{'ours cores: api / worker / redis / bench':<42}{'raw worker cores':>17}{'pause ms raw/ours':>18}")
        for c in rows:
            cores = " / ".join(f"{c.ours.cores(r):.2f}" for r in ("api", "worker", "redis", "bench"))
            slots = c.concurrency * c.processes
            ideal = "-" if workload == "trivial" else rate_text(slots / (args.latency_ms / 1000))
            print(f"    {c.processes:>5}{c.concurrency:>5}{c.ours.jobs:>6}{ideal:>8}{rate_text(c.raw.rate):>8}"
                  f"{rate_text(c.ours.rate):>8}"
                  f"{c.ratio:>7.2f}{c.raw.mean_latency * 1000:>12.0f}{c.ours.mean_latency * 1000:>13.0f}"
                  f"{c.ours.mean_latency / c.raw.mean_latency:>11.2f}   {cores:<42}{c.raw.cores('worker'):>17.2f}"
                  f"{c.raw.longest_pause * 1000:>9.0f}{c.ours.longest_pause * 1000:>7.0f}")
        failed = sum(c.ours.failed for c in rows)
        if failed:
            print(f"    NOTE: {failed} of our jobs did not complete successfully (see the logs)")


if __name__ == "__main__":
    main()
