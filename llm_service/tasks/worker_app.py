"""Builds the worker's Celery app and its runtime, sized from the command line's ``--concurrency``.

The HTTP Session pool, the Redis pools and the broker pools all follow the worker's concurrency, so one flag
(``-c``) sizes everything; ``WORKER_CONCURRENCY`` is the default when the flag is absent.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from celery import Celery, signals

from .. import services
from ..config import Config
from ..logs import configure_logging, event
from .bootstrap import concurrency_from_argv, is_worker_command, pool_from_argv
from .celery_app import make_celery
from .queue import CeleryJobQueue
from .runtime import WorkerRuntime, install_runtime

log = logging.getLogger("llm_service.worker")


def create_worker_app(argv: Sequence[str]) -> Celery:
    config = Config.from_env()
    concurrency = concurrency_from_argv(argv)
    if concurrency:
        config = config.with_overrides(worker_concurrency=concurrency)
    app = make_celery(config)
    if not is_worker_command(argv):
        return app  # `celery -A worker inspect ...` and friends: no runtime, no background threads

    configure_logging(config.log_level, config.log_format)
    pool = pool_from_argv(argv)

    @signals.worker_init.connect(weak=False)
    def _build_runtime(sender: Any = None, **_: Any) -> None:
        runtime = WorkerRuntime(config, services=_build_services(config), queue=CeleryJobQueue(app))
        install_runtime(runtime)
        event(log, "worker.init", pool=pool, concurrency=config.worker_concurrency, worker=runtime.worker_id,
              http_pool=config.effective_http_pool_size)

    @signals.worker_ready.connect(weak=False)
    def _start(sender: Any = None, **_: Any) -> None:
        from .runtime import current_runtime

        current_runtime().start()
        _start_metrics(config)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(sender: Any = None, **_: Any) -> None:
        from .runtime import current_runtime

        current_runtime().stop()

    return app


def _build_services(config: Config) -> services.Services:
    observer = None
    try:
        from ..observability import worker_observer

        observer = worker_observer()
    except ImportError:  # metrics are optional
        observer = None
    return services.build(config, redis_mode="required", observer=observer)


def _start_metrics(config: Config) -> None:
    if not config.worker_metrics_port:
        return
    try:
        from ..observability import start_worker_metrics_server
    except ImportError:
        return
    start_worker_metrics_server(config)
