"""A real local stack for integration and fault tests: worker and API as separate processes, the sandbox upstream
as a real HTTP server, all on the machine's Redis (db 13, a unique key prefix and Celery queue per stack).

Processes are started exactly as the README and docker-compose start them (``celery -A worker worker ...``,
``gunicorn wsgi:app``), so these tests exercise the same commands users run.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.support import REPO

BIN = Path(sys.executable).parent
API_SECRET = "integration-api-secret-0123456789"
WEBHOOK_SECRET = "integration-webhook-secret-0123456789"
FORBIDDEN_LOG_TEXT = ("Event loop is closed", "another loop is running", "MaxConnectionsError", "Couldn't ack")
TERMINAL = ("completed", "failed", "cancelled")
# JSON: "level": "error"; Celery: "[... ERROR/MainProcess] ..."; gunicorn: "[...] [123] [ERROR] ..."
ERROR_LINE = re.compile(r'"level": "(error|critical)"|\b(ERROR|CRITICAL)/\w+\]|\[(ERROR|CRITICAL)\]')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_worker_command(pool: str, concurrency: int) -> list[str]:
    """The worker command as users run it (README, docker-compose's worker service)."""
    return ["celery", "-A", "worker", "worker", f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=INFO"]


def base_api_command() -> list[str]:
    """The API command as users run it: settings come from gunicorn.conf.py."""
    return ["gunicorn", "wsgi:app"]


def worker_command(pool: str, concurrency: int, name: str) -> list[str]:
    """The users' command, from this venv, with a unique node name (several test workers share the broker)."""
    command = base_worker_command(pool, concurrency)
    return [str(BIN / command[0]), *command[1:], "-n", name, "--without-gossip", "--without-mingle"]


def api_command(port: int) -> list[str]:
    command = base_api_command()
    return [str(BIN / command[0]), *command[1:], "--bind", f"127.0.0.1:{port}", "--workers", "1"]


class Stack:
    def __init__(self, workdir: Path, sandbox: Any, *, redis_url: str = "redis://127.0.0.1:6379/13",
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox
        self.id = uuid.uuid4().hex[:10]
        self.prefix = f"itest:{self.id}"
        self.env = {
            **os.environ, **sandbox.base_urls(),
            "WEATHERAPI_API_KEY": "sandbox-weather-key", "GOOGLE_PLACES_API_KEY": "sandbox-places-key",
            "OPENROUTER_API_KEY": "sandbox-openrouter-key",
            "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": self.prefix, "CELERY_QUEUE": f"itest-{self.id}",
            "LLM_API_SECRET": API_SECRET, "LLM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WORKFLOWS_DIR": str(REPO / "workflows"),
            "JOB_LEASE_SECONDS": "3", "JOB_HEARTBEAT_SECONDS": "1", "SWEEPER_INTERVAL_SECONDS": "1",
            "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self._worker_options: dict[str, tuple[str, int]] = {}
        self.api_url = ""
        self.session = requests.Session()
        self.session.headers["X-API-Secret"] = API_SECRET

    # -- processes ----------------------------------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def start_worker(self, pool: str = "eventlet", concurrency: int = 20, name: str = "worker") -> subprocess.Popen:
        self._worker_options[name] = (pool, concurrency)
        return self._spawn(name, worker_command(pool, concurrency, f"{name}-{self.id}@%h"))

    def restart_worker(self, name: str = "worker", **env: str) -> subprocess.Popen:
        """Start worker ``name`` again with its original pool and concurrency (SIGKILLing it first if it still
        runs); its log continues in the same file. ``env`` changes the environment of this and later processes."""
        if name in self.processes:
            self.kill(name)
        self.env.update(env)
        pool, concurrency = self._worker_options[name]
        return self.start_worker(pool, concurrency, name)

    def rss_bytes(self, name: str = "worker") -> int:
        """Resident memory of process ``name`` (the worker's main process: green and thread pools have no
        children), from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.processes[name].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for {name}")

    def start_api(self) -> None:
        port = free_port()
        self._spawn("api", api_command(port))
        self.api_url = f"http://127.0.0.1:{port}"
        self.wait(lambda: self._get_ok("/"), "the API to answer", 30)

    def wait_for_workers(self, timeout: float = 60) -> None:
        self.wait(lambda: (self.health() or {}).get("services", {}).get("celery", {}).get("workers", 0) > 0,
                  "a worker to answer pings", timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(30)

    def stop(self) -> None:
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.session.close()
        self.purge_redis()

    def purge_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}:*", count=1000))
            keys += list(client.scan_iter(match=f"itest-{self.id}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()

    def logs(self, name: str | None = None) -> str:
        names = [name] if name else list(self.processes)
        return "\n".join((self.workdir / f"{n}.log").read_text(errors="replace")
                         for n in names if (self.workdir / f"{n}.log").exists())

    def forbidden_log_lines(self) -> list[str]:
        return [line for line in self.logs().splitlines() if any(text in line for text in FORBIDDEN_LOG_TEXT)]

    def error_log_lines(self) -> list[str]:
        """ERROR/CRITICAL lines of every process: our JSON logs, and the text lines of Celery and gunicorn."""
        return [line for line in self.logs().splitlines() if ERROR_LINE.search(line)]

    # -- API ----------------------------------------------------------------------------------------------------

    def _get_ok(self, path: str) -> bool:
        try:
            return self.session.get(self.api_url + path, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    def health(self) -> dict | None:
        try:
            return self.session.get(self.api_url + "/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None

    def submit(self, workflow: str = "emergency_contacts", input_data: dict | None = None, *,
               webhook: str | None = "default", **fields: Any) -> str:
        body: dict[str, Any] = {"workflow_name": workflow,
                                "input_data": input_data if input_data is not None else example(workflow), **fields}
        if webhook:
            body["webhook_url"] = self.sandbox.webhook_url(webhook)
        response = self.session.post(self.api_url + "/api/v1/workflow", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def status(self, job_id: str) -> dict:
        return self.session.get(f"{self.api_url}/api/v1/status/{job_id}", timeout=10).json()

    def job(self, job_id: str) -> dict:
        return self.session.get(f"{self.api_url}/api/v1/jobs/{job_id}", timeout=10).json()

    def cancel(self, job_id: str) -> requests.Response:
        return self.session.post(f"{self.api_url}/api/v1/jobs/{job_id}/cancel", timeout=10)

    def wait_terminal(self, job_ids: list[str], timeout: float = 120) -> dict[str, dict]:
        end = time.monotonic() + timeout
        results: dict[str, dict] = {}
        while time.monotonic() < end:
            for job_id in job_ids:
                if job_id not in results:
                    status = self.status(job_id)
                    if status.get("status") in TERMINAL:
                        results[job_id] = status
            if len(results) == len(job_ids):
                return results
            time.sleep(0.25)
        missing = {j: self.status(j).get("status") for j in job_ids if j not in results}
        raise AssertionError(f"jobs not finished after {timeout}s: {missing}\n--- logs ---\n{self.logs()[-4000:]}")

    def wait_status(self, job_id: str, wanted: str, timeout: float = 60) -> dict:
        self.wait(lambda: self.status(job_id).get("status") == wanted, f"job {job_id} to be {wanted}", timeout)
        return self.status(job_id)

    def webhooks_for(self, job_id: str) -> list[dict]:
        return [w for w in self.sandbox.webhooks() if (w.get("json") or {}).get("job_id") == job_id]

    def wait(self, check, what: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check():
                return
            for name, process in self.processes.items():
                if process.poll() is not None and name in ("api",):
                    raise AssertionError(f"{name} exited ({process.returncode}):\n{self.logs(name)[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n--- logs ---\n{self.logs()[-4000:]}")


def example(workflow: str) -> dict:
    return json.loads((REPO / "workflows" / "examples" / f"{workflow}.json").read_text())


def located_input(index: int) -> dict:
    """emergency_contacts input at a distinct location per index (so upstream calls are not cache hits)."""
    data = example("emergency_contacts")
    data["lat"] = round(10 + (index * 0.137) % 60, 4)
    data["lng"] = round(-130 + (index * 0.291) % 100, 4)
    return data


class StackFactory:
    """Builds stacks for a test (or a module) and stops every one of them afterwards."""

    def __init__(self, tmp_path_factory: Any, sandbox: Any) -> None:
        self.tmp_path_factory, self.sandbox = tmp_path_factory, sandbox
        self.stacks: list[Stack] = []

    def __call__(self, name: str = "stack", **kwargs: Any) -> Stack:
        stack = Stack(self.tmp_path_factory.mktemp(name), self.sandbox, **kwargs)
        self.stacks.append(stack)
        return stack

    def stop_all(self) -> None:
        for stack in self.stacks:
            stack.stop()
