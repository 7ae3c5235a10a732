"""The facts of a job's life, in one place: its statuses and which of them are final, the webhook event each ending
sends, how soon an undelivered event is retried, the canonical form of a job id, and how a terminal event is handed
to the webhook sender. The store, the worker runtime, the API and the webhook code all import them from here (the
Lua scripts in ``lua.py`` spell the same statuses; a test keeps the two in step).
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

STATUSES = ("pending", "queued", "processing", "completed", "failed", "cancelled")
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
RUNNING_STATUSES = ("pending", "queued", "processing")  # the API's `status=running` filter

EVENT_COMPLETED = "workflow.completed"
EVENT_FAILED = "workflow.failed"
EVENT_CANCELLED = "workflow.cancelled"
WEBHOOK_EVENTS = {"completed": EVENT_COMPLETED, "failed": EVENT_FAILED, "cancelled": EVENT_CANCELLED}

# A terminal event is published at once; its due time is set this far ahead as a safety net, so the maintenance
# loop re-sends it if that message is lost (or the broker is down right now). Not zero, so the due-webhook sweep does
# not race the immediate delivery.
WEBHOOK_SAFETY_DELAY = 30.0

log = logging.getLogger("llm_service.jobs")


def canonical_uuid(text: Any) -> str | None:
    """A job or user id in canonical form (lower case, hyphenated), from any spelling ``uuid.UUID`` accepts."""
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        return None


def dispatch_webhook(store: Any, queue: Any, job_id: str, event: str, *, now: float, attempt: int = 1) -> bool:
    """Hand a job's terminal event to the webhook sender: its due time first (the safety net), then the message.
    Returns False (logged) when Redis or the broker cannot take it now; the due-webhook sweep then sends it."""
    from ..jobs.queue import QueueUnavailable
    from .store import StoreUnavailable

    try:
        store.set_webhook_state(job_id, "pending", next_attempt_at=now + WEBHOOK_SAFETY_DELAY)
        queue.enqueue_webhook(job_id, event, attempt=attempt)
    except (StoreUnavailable, QueueUnavailable) as exc:
        log.warning("webhook %s for job %s not dispatched now (%s); the maintenance loop sends it later", event,
                    job_id, type(exc).__name__, extra={"job_id": job_id})
        return False
    return True
