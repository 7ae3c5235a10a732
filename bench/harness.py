"""What the service benchmarks share: the stacks under test, bursts of jobs, and the evidence taken during them.

The processes are started by ``tests.integration.stack.Stack``, the harness of the integration tests: the worker is
``celery -A worker worker --pool=... --concurrency=N`` and the API ``gunicorn wsgi:app``, each with a unique Redis
key prefix and Celery queue. The benchmarks therefore measure the very commands the tests and users run. The raw
baseline (``bench/noop_app.py``) is started by the same harness with the same command line, only ``-A`` changed.

Measurement rules, shared by every service benchmark so their figures compare:

* A burst submits N jobs from a pool of submitting threads (the same pool size for ours and the baseline) and ends
  when the N-th completion is observed in Redis (polled every 5 ms, the same way for both). ``wall`` runs from the
  first submission to that observation.
* Mean latency (submission -> completion) is computed without matching jobs to completions: the mean of the
  completion times minus the mean of the submission times (Little's law), exact up to the poll interval.
* CPU seconds per process group come from ``/proc/<pid>/stat`` before and after the burst (utime + stime), so a
  figure of 1.0 core means one process was busy the whole time; Redis commands from ``INFO commandstats`` deltas,
  which count the whole server (other users of this Redis included: the figures say so).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from requests.adapters import HTTPAdapter

from bench.noop_app import NOOP_TASK, make_noop_app
from llm_service.config import Config
from llm_service.tasks.celery_app import make_celery
from tests.integration.stack import API_SECRET, Stack, worker_command

REPO = Path(__file__).resolve().parent.parent

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"  # not the tests' dbs (13, 15), so MONITOR traces see only us
POLL_SECONDS = 0.005
STALL_SECONDS = 60.0
ONE_STEP = "bench_one_step"
# The production defaults (Stack shortens them so fault tests recover fast; a benchmark measures what users run).
PRODUCTION_TIMINGS = {"JOB_LEASE_SECONDS": "10", "JOB_HEARTBEAT_SECONDS": "1", "SWEEPER_INTERVAL_SECONDS": "2"}
ONE_STEP_DEFINITION = {
    "name": ONE_STEP, "version": "1.0.0",
    "description": "Benchmark: one pure transform step, so a job costs only the service's own work.",
    "inputs": [{"name": "n", "type": "integer", "required": False, "default": 0}],
    "steps": [{"id": "echo", "type": "transform",
               "config": {"operation": "template", "input": "${input}", "config": {"template": "job ${n}"}}}],
    "outputs": {"text": "${steps.echo.output}"},
}


# -- workflows ---------------------------------------------------------------------------------------------------

def write_workflows(root: Path, definitions: dict[str, dict], *, prompts_from: Path | None = None) -> Path:
    """A workflows directory holding ``definitions``; prompts are a symlink to ``prompts_from`` (the same files)."""
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    for name, definition in definitions.items():
        (root / "definitions" / f"{name}.json").write_text(json.dumps(definition, indent=1))
    prompts = root / "prompts"
    if prompts_from is not None and not prompts.exists():
        prompts.symlink_to(prompts_from, target_is_directory=True)
    prompts.mkdir(exist_ok=True)
    return root


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` runs of ``fn``, after one warm-up run (every in-process timing uses this)."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


POOLS = ("eventlet", "gevent", "threads")


def add_stack_options(parser: argparse.ArgumentParser, *, pool: bool = True) -> None:
    """The options every service benchmark takes: the worker pool, the submitting threads, the Redis to use and
    extra environment for the service's processes (read back with :func:`parse_env`)."""
    if pool:
        parser.add_argument("--pool", default="eventlet", choices=POOLS)
    parser.add_argument("--threads", type=int, default=16, help="submitting threads (default 16; the API has 16)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the service's API and worker processes (repeatable)")


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` options (extra settings for the service's processes) as a dict."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


# -- machine and process evidence ----------------------------------------------------------------------------------

def machine_summary() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({model}), {mem_gb:.0f} GB RAM, python {sys.version.split()[0]}; "
            f"load average before the run: {load}")


def redis_version(client: redis.Redis) -> str:
    return str(client.info("server").get("redis_version"))


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def group_pids(pgid: int) -> list[int]:
    """Every live process in the process group (Stack starts each command in its own session/group)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, all its threads included."""
    fields = _stat_fields(str(pid))
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else 0.0


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """role -> CPU seconds so far, summed over the roles' process groups (pgid list); ``bench`` is this process."""
    totals = {role: sum(process_cpu_seconds(pid) for pgid in pgids for pid in group_pids(pgid))
              for role, pgids in groups.items()}
    times = os.times()
    totals["bench"] = times.user + times.system
    return totals


def redis_server_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def redis_commands(client: redis.Redis) -> int:
    return sum(stats["calls"] for stats in client.info("commandstats").values())


# -- targets -------------------------------------------------------------------------------------------------------

class _Processes:
    """Starting and stopping workers on a Stack, and waiting until each answers a ping."""

    def __init__(self, stack: Stack, ping_app: Any) -> None:
        self.stack = stack
        self.ping_app = ping_app
        self.workers: list[str] = []

    def spawn_workers(self, app_module: str, pool: str, concurrency: int, processes: int) -> None:
        self.stop_workers()
        for index in range(processes):
            name = f"{app_module.replace('.', '_')}{index}"
            command = worker_command(pool, concurrency, f"{name}-{self.stack.id}@%h")
            command[command.index("-A") + 1] = app_module
            self.stack._spawn(name, command)  # Stack's own spawner: same cwd, env, log file and process group
            self.workers.append(name)

    def wait_workers(self, timeout: float = 90) -> None:
        count = len(self.workers)
        self.stack.wait(lambda: self._answering() >= count, f"{count} worker(s) to answer pings", timeout)

    def _answering(self) -> int:
        try:
            replies = self.ping_app.control.ping(timeout=0.5) or []
        except Exception:
            return 0
        return sum(self.stack.id in name for reply in replies for name in reply)

    def signal_stop(self) -> None:
        """Ask every worker for a warm shutdown (running tasks finish and ack first); :meth:`stop_workers` waits."""
        for name in self.workers:
            if self.stack.processes[name].poll() is None:
                os.killpg(self.stack.processes[name].pid, signal.SIGTERM)

    def stop_workers(self) -> None:
        self.signal_stop()
        for name in self.workers:
            self.stack.kill(name, signal.SIGTERM)  # waits for the exit (SIGTERM again is harmless)
        self.workers = []

    def worker_pgids(self) -> list[int]:
        return [self.stack.processes[name].pid for name in self.workers]


class Side:
    """One side of a comparison: a Stack (own key prefix, queue, logs) with its workers, and how to submit to it.

    Subclasses say how a job is submitted, how finished jobs are counted and which processes do the work.
    """

    label = ""
    app_module = ""  # what the workers run: ``celery -A <app_module> worker ...``

    def __init__(self, stack: Stack, redis_url: str, ping_app: Any) -> None:
        self.stack = stack
        self.redis = redis.Redis.from_url(redis_url)
        self.processes = _Processes(stack, ping_app)

    def spawn(self, pool: str, concurrency: int, processes: int = 1) -> None:
        """Start the worker processes; :func:`start_workers` waits until they answer."""
        self.processes.spawn_workers(self.app_module, pool, concurrency, processes)

    def submit(self, index: int) -> None:
        raise NotImplementedError

    def finished(self) -> tuple[int, int]:
        """(jobs in a terminal state, of which not completed) so far."""
        raise NotImplementedError

    def cpu_groups(self) -> dict[str, list[int]]:
        """role -> process group ids, for CPU accounting."""
        return {"worker": self.processes.worker_pgids(), "redis": [redis_server_pid(self.redis)]}

    def stop(self) -> None:
        self.stack.stop()  # kills every process it started and deletes its keys and queues
        queue = self.stack.env["CELERY_QUEUE"]  # kombu's exchange bindings are named after the queue, not prefixed
        bindings = [key for pattern in (f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
                    for key in self.redis.scan_iter(match=pattern)]
        if bindings:
            self.redis.delete(*bindings)
        self.redis.close()


class Service(Side):
    """The real service: API (gunicorn) + worker process(es), jobs submitted through the HTTP API."""

    label = "llm-service"
    app_module = "worker"

    def __init__(self, workdir: Path, sandbox: Any, *, redis_url: str, workflows_dir: Path,
                 workflow: str = ONE_STEP, make_input: Callable[[int], dict] = lambda i: {"n": i},
                 extra_env: dict[str, str] | None = None, submit_threads: int = 16) -> None:
        stack = Stack(workdir, sandbox, redis_url=redis_url,
                      extra_env={**PRODUCTION_TIMINGS, "WORKFLOWS_DIR": str(workflows_dir), **(extra_env or {})})
        # Stack.submit is shared by the submitting threads: give its Session a connection per thread.
        stack.session.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=max(10, submit_threads)))
        super().__init__(stack, redis_url, make_celery(Config.from_env(stack.env)))
        self.workflow, self.make_input = workflow, make_input
        self._local = threading.local()
        self._headers = {"Content-Type": "application/json", "X-API-Secret": API_SECRET}

    def spawn(self, pool: str, concurrency: int, processes: int = 1) -> None:
        if "api" not in self.stack.processes:
            self.stack.start_api()
        super().spawn(pool, concurrency, processes)

    def submit(self, index: int) -> None:
        """POST through a keep-alive ``http.client`` connection per submitting thread: the load generator shares
        the two cores with what it measures, so it should cost about what ``send_task`` costs the baseline."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            parsed = urlsplit(self.stack.api_url)
            connection = self._local.connection = http.client.HTTPConnection(parsed.hostname, parsed.port,
                                                                              timeout=30)
        body = json.dumps({"workflow_name": self.workflow, "input_data": self.make_input(index)})
        connection.request("POST", "/api/v1/workflow", body=body, headers=self._headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 202:
            raise RuntimeError(f"submit answered {response.status}: {payload[:300]!r}")

    def finished(self) -> tuple[int, int]:
        """From the job store's status indexes (one pipelined round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for status in ("completed", "failed", "cancelled"):
            pipe.zcard(f"{self.stack.prefix}:jobs:status:{status}")
        completed, failed, cancelled = pipe.execute()
        return completed + failed + cancelled, failed + cancelled

    def cpu_groups(self) -> dict[str, list[int]]:
        return {"api": [self.stack.processes["api"].pid], **super().cpu_groups()}


class RawCelery(Side):
    """The baseline: ``bench/noop_app.py`` workers, tasks published with ``send_task`` straight to the broker."""

    label = "raw Celery"
    app_module = "bench.noop_app"

    def __init__(self, workdir: Path, sandbox: Any, *, redis_url: str, sleep_seconds: float = 0.0) -> None:
        stack = Stack(workdir, sandbox, redis_url=redis_url, extra_env=PRODUCTION_TIMINGS)
        self.app = make_noop_app(Config.from_env(stack.env))
        super().__init__(stack, redis_url, self.app)
        self.counter = f"{stack.prefix}:noop:done"
        self.sleep_seconds = sleep_seconds

    def submit(self, index: int) -> None:
        self.app.send_task(NOOP_TASK, args=[self.counter, self.sleep_seconds])

    def finished(self) -> tuple[int, int]:
        return int(self.redis.get(self.counter) or 0), 0


def start_workers(sides: list[Side], pool: str, concurrency: int, processes: int = 1) -> None:
    """(Re)start every side's workers with the same pool, concurrency and process count, side by side."""
    for side in sides:
        side.processes.signal_stop()  # all shut down at once, then each side waits for its own
    for side in sides:
        side.spawn(pool, concurrency, processes)
    for side in sides:
        side.processes.wait_workers()


# -- bursts --------------------------------------------------------------------------------------------------------

@dataclass
class Burst:
    label: str
    jobs: int
    wall: float  # first submission -> last completion observed (s)
    submit_wall: float  # first submission -> last submission answered (s)
    mean_latency: float  # mean of (completion - submission) (s)
    failed: int
    cpu: dict[str, float] = field(default_factory=dict)  # role -> CPU seconds during the burst
    redis_commands: int = 0  # whole server, INFO commandstats delta
    longest_pause: float = 0.0  # longest time between two completions (s): a stalled consumer shows here

    @property
    def rate(self) -> float:
        return self.jobs / self.wall

    def cores(self, role: str) -> float:
        """Average cores the role kept busy during the burst (1.0 = one core all the time)."""
        return self.cpu.get(role, 0.0) / self.wall

    def cpu_ms_per_job(self, role: str) -> float:
        return self.cpu.get(role, 0.0) / self.jobs * 1000


def run_burst(target: Side, jobs: int, *, threads: int = 16, stall_seconds: float = STALL_SECONDS) -> Burst:
    """Submit ``jobs`` from ``threads`` threads and wait until all of them are finished (see the module doc)."""
    client = target.redis
    done_before, failed_before = target.finished()
    groups = target.cpu_groups()
    cpu_before, commands_before = cpu_seconds(groups), redis_commands(client)
    submitted_at = [0.0] * jobs
    completions: list[float] = []
    submit_end = [0.0]

    def submit(index: int) -> None:
        submitted_at[index] = time.perf_counter()
        target.submit(index)

    def submit_all(pool: ThreadPoolExecutor) -> None:
        futures = [pool.submit(submit, i) for i in range(jobs)]
        for future in futures:
            future.result()  # an exception here (API error, broker down) ends the burst
        submit_end[0] = time.perf_counter()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        errors: list[BaseException] = []
        driver = threading.Thread(target=lambda: _capture(errors, submit_all, pool), daemon=True)
        driver.start()
        seen, last_progress = 0, time.perf_counter()
        while seen < jobs:
            if errors:
                raise errors[0]
            done, _ = target.finished()
            now = time.perf_counter()
            if done - done_before > seen:
                completions.extend([now] * (done - done_before - seen))
                seen, last_progress = done - done_before, now
            elif now - last_progress > stall_seconds:
                raise RuntimeError(f"{target.label}: no progress for {stall_seconds:.0f}s "
                                   f"({seen}/{jobs} finished)\n{target.stack.logs()[-3000:]}")
            time.sleep(POLL_SECONDS)
        driver.join()
        if errors:
            raise errors[0]
    end = completions[-1]
    cpu_after, commands_after = cpu_seconds(groups), redis_commands(client)
    _, failed_after = target.finished()
    return Burst(
        label=target.label, jobs=jobs, wall=end - start, submit_wall=submit_end[0] - start,
        mean_latency=statistics.fmean(completions[:jobs]) - statistics.fmean(submitted_at),
        failed=failed_after - failed_before,
        cpu={role: cpu_after[role] - cpu_before[role] for role in cpu_after},
        redis_commands=commands_after - commands_before,
        longest_pause=max((b - a for a, b in pairwise(completions)), default=0.0))


def _capture(errors: list[BaseException], fn: Callable, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # reported by the polling loop
        errors.append(exc)


def alternate(targets: list[Side], jobs: int, rounds: int, *, threads: int,
              pause: float = 0.0) -> dict[str, list[Burst]]:
    """``rounds`` bursts per target, interleaved (A B A B ...), so load from elsewhere hits both alike.

    ``pause`` seconds between rounds: a burst that filled every job slot leaves a green-pool worker waiting for
    its next 2-second consumer poll (see ``bench/scaling.py``); pausing keeps that wait out of the next burst.
    """
    results: dict[str, list[Burst]] = {t.label: [] for t in targets}
    for round_index in range(rounds):
        if round_index and pause:
            time.sleep(pause)
        for target in targets:
            results[target.label].append(run_burst(target, jobs, threads=threads))
    return results


def median_burst(bursts: list[Burst]) -> Burst:
    """The burst with the median rate (a real run, so its CPU and latency figures belong together)."""
    ordered = sorted(bursts, key=lambda b: b.rate)
    return ordered[len(ordered) // 2]


def idle_latency(target: Side, repeats: int = 5) -> float:
    """Median seconds from submitting one job to seeing it finished, with nothing else queued."""
    return statistics.median(run_burst(target, 1, threads=1).wall for _ in range(repeats))


def warm_up(target: Side, jobs: int = 20, threads: int = 4) -> None:
    """Imports, connections, script loading and pools first, outside the measurement."""
    run_burst(target, jobs, threads=threads)


def scratch_dir() -> Path:
    """A fresh directory for the stacks' logs and temporary workflows (kept, so logs can be read afterwards)."""
    return Path(tempfile.mkdtemp(prefix="llm-service-bench-"))


# -- Redis command trace ------------------------------------------------------------------------------------------

def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def _local_ports_by_inode() -> dict[str, int]:
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            ports[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    return ports


def client_ports(groups: dict[str, list[int]]) -> dict[int, str]:
    """local TCP port -> role, for every socket the roles' processes hold open now (this process is ``bench``)."""
    by_inode = _local_ports_by_inode()
    owners: dict[int, str] = {}
    members = {role: [pid for pgid in pgids for pid in group_pids(pgid)] for role, pgids in groups.items()}
    members["bench"] = [os.getpid()]
    for role, pids in members.items():
        for pid in pids:
            for inode in _socket_inodes(pid):
                if inode in by_inode:
                    owners[by_inode[inode]] = role
    return owners


class CommandTrace:
    """Redis MONITOR on our database while a few jobs run: which process sends which commands, per job.

    MONITOR slows Redis down, so traces run outside the timed bursts. Commands run inside Lua scripts are counted
    under ``lua``; the rest are attributed to the process holding the client socket (found through /proc).
    """

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.lines: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CommandTrace:
        self._monitor = self.client.monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                entry = self._monitor.next_command()
            except Exception:
                return
            if entry and entry["db"] == self.db:
                self.lines.append(entry)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.client.ping()  # wakes the reader with one last line
        if self._thread:
            self._thread.join(2)
        try:
            self._monitor.__exit__(*exc)
        except Exception:
            pass
        self.client.close()

    def per_job(self, groups: dict[str, list[int]], jobs: int) -> dict[str, dict[str, float]]:
        """role -> command name -> calls per job (``lua`` = inside scripts; ``other`` = sockets closed since)."""
        ports = client_ports(groups)
        table: dict[str, dict[str, float]] = {}
        for entry in self.lines:
            if entry["client_type"] == "lua":
                role = "lua"
            else:
                role = ports.get(int(entry["client_port"] or 0), "other")
            name = entry["command"].split(" ", 1)[0].upper()
            table.setdefault(role, {}).setdefault(name, 0.0)
            table[role][name] += 1 / jobs
        return table
