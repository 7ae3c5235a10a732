"""Helpers shared by the fault cases: a private Redis that can be stopped and restarted, log-event parsing,
parallel submission and timestamp arithmetic."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import redis

from tests.integration.stack import Stack, free_port, located_input


class RedisServer:
    """A dedicated ``redis-server`` with append-only persistence, stopped and started again on the same port and
    directory, so its data survives the outage the way a production Redis with AOF does."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 10) -> None:
        log = open(self.directory / "redis-server.log", "ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "", "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not start:\n"
                             f"{(self.directory / 'redis-server.log').read_text()[-2000:]}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM: Redis flushes the append-only file and exits, like a service manager's stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def submit_many(stack: Stack, count: int, offset: int, **fields: Any) -> list[str]:
    """``count`` emergency_contacts jobs at distinct locations, submitted from parallel clients."""
    with ThreadPoolExecutor(max_workers=min(count, 25)) as pool:
        return list(pool.map(lambda i: stack.submit(input_data=located_input(offset + i), **fields), range(count)))


def log_events(stack: Stack, name: str | None = None, process: str | None = None) -> list[dict]:
    """The structured (JSON) log events of a stack's processes, optionally only one event name."""
    found = []
    for line in stack.logs(process).splitlines():
        if not line.startswith("{"):
            continue
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if name is None or payload.get("event") == name:
            found.append(payload)
    return found


ENDINGS = ("completed", "failed", "cancelled")


def terminal_events(stack: Stack, job_ids: Iterable[str]) -> dict[str, list[str]]:
    """job id -> every terminal transition the workers logged for it: an execution that finished it
    (``job.state``), or the sweeper failing/cancelling it after its worker died (``job.recovered``)."""
    wanted = set(job_ids)
    seen: dict[str, list[str]] = {job_id: [] for job_id in wanted}
    for payload in log_events(stack):
        if payload.get("job_id") not in wanted:
            continue
        if payload.get("event") == "job.state" and payload.get("status") in ENDINGS:
            seen[payload["job_id"]].append(payload["status"])
        elif payload.get("event") == "job.recovered" and payload.get("outcome") in ENDINGS:
            seen[payload["job_id"]].append(f"{payload['outcome']} (sweeper)")
    return seen


def parse_time(text: str) -> float:
    """ISO-8601 (``Z`` suffix allowed) -> epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def step_entry(job: dict, step_id: str) -> dict:
    entries = [s for s in job["steps"] if s["step_id"] == step_id]
    assert len(entries) == 1, (step_id, job["steps"])
    return entries[0]
