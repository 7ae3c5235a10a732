"""The Celery application: settings made for the eventlet pool, and the two thin task wrappers.

Settings that matter (each was a failure in the old service or measured here):

* Redis connection pools sized for the concurrency: the defaults (10) raise ``MaxConnectionsError`` and fail acks
  at concurrency 100.
* ``worker_prefetch_multiplier=1`` and late acks with ``reject_on_worker_lost``; the visibility timeout is longer
  than the longest workflow so a running job is never handed to a second worker by the broker. Crash recovery does
  not rely on that redelivery (it took longer than 90 s after a SIGKILL): our own leases and sweeper do it.
* Priorities: the Redis transport serves the *lowest* number first, so API priority p (0-10, higher = sooner) is
  sent as ``10 - p`` over eleven priority steps (the old service sent p as is, inverting the order).
* No result backend: job state lives in our job store.
* The Redis transport is kombu's, with a saturated worker polling for freed slots every 50 ms instead of every 2 s
  (``llm_service.tasks.transport``).
"""
from __future__ import annotations

from typing import Any

from celery import Celery

from ..config import Config

WORKFLOW_TASK = "execute_workflow"
WEBHOOK_TASK = "deliver_webhook"
PRIORITY_STEPS = list(range(11))
WEBHOOK_PRIORITY = 0  # broker priority: webhooks first, so deliveries keep their schedule under load


def broker_priority(api_priority: int) -> int:
    return 10 - max(0, min(10, int(api_priority)))


def make_celery(config: Config) -> Celery:
    pool_size = config.worker_concurrency * 2 + 20
    app = Celery("llm_service", broker=config.effective_broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=config.worker_concurrency,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_pool_limit=pool_size,
        broker_transport="llm_service.tasks.transport:Transport",
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout_seconds,
            "priority_steps": PRIORITY_STEPS,
            "sep": ":",
            "queue_order_strategy": "priority",
            "max_connections": pool_size,
            "socket_timeout": 15,
            "socket_connect_timeout": 5,
            "health_check_interval": 25,
        },
        task_default_priority=broker_priority(0),
        task_default_queue=config.celery_queue,
        timezone="UTC",
        enable_utc=True,
    )
    _register_tasks(app)
    return app


def _register_tasks(app: Celery) -> None:
    from .runtime import current_runtime

    @app.task(name=WORKFLOW_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def execute_workflow(self: Any, job_id: str) -> dict:
        return current_runtime().run_job(job_id)

    @app.task(name=WEBHOOK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def deliver_webhook(self: Any, job_id: str, event: str, attempt: int = 1) -> dict:
        return current_runtime().deliver_webhook(job_id, event, attempt)
