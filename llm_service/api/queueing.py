"""The queue the API uses when the Celery side cannot be imported: every publish fails with QueueUnavailable
(503, nothing queued) and health reports the broker as unavailable, instead of the app failing to start."""
from __future__ import annotations

from ..jobs.queue import QueueUnavailable


class UnavailableQueue:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def pending_push(self, job_id: str, *, priority: int) -> None:
        return None  # publishes through enqueue

    def enqueue(self, job_id: str, *, priority: int) -> None:
        raise QueueUnavailable(self.reason)

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        raise QueueUnavailable(self.reason)

    def revoke(self, job_id: str) -> None:
        return None  # nothing was ever published through this queue, so there is nothing to revoke

    def workers(self, timeout: float = 1.0) -> int | None:
        return None

    def backlog(self) -> int | None:
        return None
