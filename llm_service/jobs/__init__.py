"""Job persistence: the Redis job store shared by the API, the worker, the webhook sender and the sweeper."""
from .store import (
    CALLER_FIELDS,
    RECORD_DEFAULTS,
    STATUSES,
    SUMMARY_FIELDS,
    TERMINAL_STATUSES,
    WEBHOOK_EVENTS,
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
