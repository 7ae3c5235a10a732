"""Job persistence: the Redis job store shared by the API, the worker, the webhook sender and the sweeper, and the
job's lifecycle facts (``lifecycle.py``)."""
from .lifecycle import STATUSES, TERMINAL_STATUSES, WEBHOOK_EVENTS
from .store import (
    CALLER_FIELDS,
    RECORD_DEFAULTS,
    SUMMARY_FIELDS,
    WEBHOOK_STATES,
    Claim,
    DuplicateJob,
    IdempotencyKey,
    IdempotencyKeyTaken,
    JobStore,
    StoreUnavailable,
)

__all__ = [
    "CALLER_FIELDS", "RECORD_DEFAULTS", "STATUSES", "SUMMARY_FIELDS", "TERMINAL_STATUSES", "WEBHOOK_EVENTS",
    "WEBHOOK_STATES", "Claim", "DuplicateJob", "IdempotencyKey", "IdempotencyKeyTaken", "JobStore", "StoreUnavailable",
]
