"""The Celery-backed :class:`llm_service.jobs.queue.JobQueue` the API and the worker publish through."""
from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import ChannelError

from ..jobs.queue import QueueUnavailable
from .celery_app import WEBHOOK_PRIORITY, WEBHOOK_TASK, WORKFLOW_TASK, broker_priority

log = logging.getLogger("llm_service.queue")


class CeleryJobQueue:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue(self, job_id: str, *, priority: int) -> None:
        self._send(WORKFLOW_TASK, [job_id], task_id=job_id, priority=broker_priority(priority))

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        self._send(WEBHOOK_TASK, [job_id, event, attempt], priority=WEBHOOK_PRIORITY,
                   countdown=countdown or None)

    def revoke(self, job_id: str) -> None:
        try:
            self.app.control.revoke(job_id)
        except Exception:  # best effort: the worker's claim refuses cancelled jobs anyway
            log.warning("could not broadcast revoke for job %s", job_id, extra={"job_id": job_id})

    def workers(self, timeout: float = 1.0) -> int | None:
        """Ping the workers; a broker that is down answers None quickly (no reconnect loop)."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
                replies = self.app.control.ping(timeout=timeout, connection=connection) or []
        except Exception:
            return None
        return len(replies)

    def backlog(self) -> int | None:
        """Messages waiting in the job queue, over all priority levels (a passive declare counts them)."""
        try:
            with self.app.pool.acquire(block=True) as connection:
                declared = connection.default_channel.queue_declare(queue=self.app.conf.task_default_queue,
                                                                    passive=True)
        except ChannelError:  # the Redis transport has no queue key while the queue is empty
            return 0
        except Exception:
            return None
        return int(declared.message_count)

    def _send(self, name: str, args: list, **options: object) -> None:
        try:
            self.app.send_task(name, args=args, retry=True,
                               retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                             "interval_max": 1.0}, **options)
        except Exception as exc:
            raise QueueUnavailable(f"could not publish {name}: {type(exc).__name__}") from exc
