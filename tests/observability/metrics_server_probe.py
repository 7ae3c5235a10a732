"""Start the worker's metrics server under eventlet monkey-patching and print a JSON verdict, then keep serving.

Usage: python metrics_server_probe.py PORT REDIS_PREFIX (run from the repository root). Patching happens before
anything else is imported, as worker.py does. After the verdict line the main green thread only sleeps, so the
parent test can scrape from another process while the hub serves the request from the server's green thread.
"""
import sys

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import redis  # noqa: E402
from eventlet import patcher  # noqa: E402

from llm_service.config import Config  # noqa: E402
from llm_service.jobs import JobStore  # noqa: E402
from llm_service.observability import start_worker_metrics_server, worker_observer  # noqa: E402


def main() -> None:
    port, prefix = int(sys.argv[1]), sys.argv[2]
    config = Config(redis_url="redis://127.0.0.1:6379/15", redis_key_prefix=prefix, celery_queue=f"{prefix}:q",
                    worker_metrics_port=port)
    client = redis.Redis.from_url(config.redis_url, socket_timeout=5)
    store = JobStore(client, prefix=prefix)
    store.create({"workflow_name": "probe"})
    worker_observer().step_finished(job_id="probe-job", step_id="s", step_type="llm", success=True,
                                    duration_ms=10, error=None, cached=None)
    services = SimpleNamespace(store=store, redis=client)
    server = start_worker_metrics_server(config, services=services)
    again = start_worker_metrics_server(config, services=services)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    print(json.dumps({"green": patcher.is_monkey_patched("thread"), "port": server.server_port,
                      "same_server_twice": again is server,
                      "self_scrape": 'llm_jobs_by_status{status="queued"} 1.0' in body}), flush=True)
    deadline = time.monotonic() + 60  # the parent kills us long before; this only bounds an orphaned probe
    while time.monotonic() < deadline:
        time.sleep(0.05)


main()
