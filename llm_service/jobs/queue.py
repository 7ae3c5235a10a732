"""How the API hands work to the workers, as a small interface.

The Celery implementation lives in ``llm_service.tasks.queue``; the API only sees this protocol, so its tests can
use an in-memory fake and the API never imports the worker's code paths.
"""
from __future__ import annotations

from typing import Protocol


class QueueUnavailable(Exception):
    """The broker could not take the message (Redis down): the API answers 503."""


class JobQueue(Protocol):
    def enqueue(self, job_id: str, *, priority: int) -> None:
        """Publish the job (task id == job id). ``priority`` 0-10, higher runs sooner. Raises QueueUnavailable."""

    def pending_push(self, job_id: str, *, priority: int) -> tuple[str, str] | None:
        """What :meth:`enqueue` would publish, as one ``(Redis list key, payload)`` LPUSH that the job store's
        create script may send itself, or None (then create, and :meth:`enqueue` after it).

        Why: where the broker is the job store's Redis, creating and publishing a job in one script is one round
        trip instead of two (a tenth of a submission's CPU) and all-or-nothing: no job without its message, and no
        message for a job that was not created."""

    def revoke(self, job_id: str) -> None:
        """Best effort: tell workers to drop the queued message for this job."""

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        """Schedule one webhook delivery attempt. Raises QueueUnavailable."""

    def workers(self, timeout: float = 1.0) -> int | None:
        """How many workers answered a ping within ``timeout``; None when the broker is unreachable."""

    def backlog(self) -> int | None:
        """How many messages wait in the broker's job queue (not yet handed to a worker); None when unknown."""
