"""The raw-Celery baseline of the service benchmarks: a task that does nothing but count itself.

Started exactly like the real worker (``celery -A bench.noop_app worker --pool=eventlet --concurrency=N``, the
command line of ``tests.integration.stack.worker_command`` with only ``-A`` changed), and built by the service's own
``make_celery``, so broker URL, pools, prefetch, late acks, priorities and visibility timeout are the same settings
the real worker runs with. The measured difference between this and a real job is therefore our code (API, job
store, engine), not Celery configuration.

The task INCRs a Redis counter (one round trip) so a benchmark can see completions without a result backend;
``sleep_seconds`` lets it stand for a job waiting on an upstream call (a green sleep under eventlet/gevent).
"""
from __future__ import annotations

import sys

from llm_service.tasks.bootstrap import concurrency_from_argv, monkey_patch_for

monkey_patch_for(sys.argv)  # before anything else imports socket/threading, as worker.py does

import time  # noqa: E402
from typing import Any  # noqa: E402

from celery import Celery  # noqa: E402

from llm_service.config import Config  # noqa: E402
from llm_service.services import make_redis  # noqa: E402
from llm_service.tasks.celery_app import make_celery  # noqa: E402

NOOP_TASK = "bench_noop"


def make_noop_app(config: Config) -> Celery:
    """The service's Celery app (same settings) with the no-op task registered; publishers use it too."""
    app = make_celery(config)
    clients: dict[str, Any] = {}

    @app.task(name=NOOP_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def bench_noop(counter_key: str, sleep_seconds: float = 0.0) -> None:
        if sleep_seconds:
            time.sleep(sleep_seconds)
        if "redis" not in clients:  # the same blocking pool, sized for the concurrency, the job store uses
            clients["redis"] = make_redis(config)
        clients["redis"].incr(counter_key)

    return app


def _config_from_argv(argv: list[str]) -> Config:
    config = Config.from_env()
    concurrency = concurrency_from_argv(argv)
    return config.with_overrides(worker_concurrency=concurrency) if concurrency else config


app = make_noop_app(_config_from_argv(sys.argv))
