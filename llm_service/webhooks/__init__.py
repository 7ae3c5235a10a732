"""Webhooks: telling a client's endpoint that its job finished, signed, retried, and recorded attempt by attempt."""
from .delivery import DeliveryOutcome, deliver_once, next_delay, run_delivery
from .email import send_failure_email
from .payloads import (
                      EVENT_CANCELLED,
                      EVENT_COMPLETED,
                      EVENT_FAILED,
                      EVENTS,
                      build_payload,
                      message_id,
)
from .signing import (
                      canonical_body,
                      legacy_signature,
                      signed_headers,
                      standard_signature,
                      verify_legacy,
                      verify_standard,
)

__all__ = [
    "DeliveryOutcome", "deliver_once", "next_delay", "run_delivery", "send_failure_email",
    "EVENT_CANCELLED", "EVENT_COMPLETED", "EVENT_FAILED", "EVENTS", "build_payload", "message_id",
    "canonical_body", "legacy_signature", "signed_headers", "standard_signature", "verify_legacy", "verify_standard",
]
