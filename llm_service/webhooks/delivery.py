"""Delivering a job's terminal event: one attempt at a time, each one recorded, with the old retry schedule.

The Celery task and the sweeper both call :func:`run_delivery` with the attempt number they mean to make; the store
record decides whether that attempt is still wanted. That is what makes a redelivered task message, or the sweeper
racing a countdown task, harmless: an attempt number already recorded is never sent again, and a per-attempt lock
stops two callers making the same attempt at the same moment. A delivered (or given-up) event is never sent again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..engine.errors import BlockedAddressError, UpstreamTimeout, WorkflowError
from ..redaction import redact_text
from .email import send_failure_email
from ..jobs.timeutil import epoch_to_iso as iso_utc
from .payloads import build_payload, message_id
from .signing import canonical_body, signed_headers

log = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 1000
NO_SECRET_ERROR = "No webhook secret configured (set LLM_WEBHOOK_SECRET)"
_LOCK_MARGIN_SECONDS = 30.0

# run_delivery outcomes
DELIVERED = "delivered"
RETRY = "retry"
PERMANENTLY_FAILED_NOW = "permanently_failed_now"
JOB_NOT_FOUND = "job_not_found"
NO_WEBHOOK_URL = "no_webhook_url"
ALREADY_DELIVERED = "already_delivered"
PERMANENTLY_FAILED = "permanently_failed"
DUPLICATE_ATTEMPT = "duplicate_attempt"
EVENT_MISMATCH = "event_mismatch"
LOCKED = "locked"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one :func:`run_delivery` call did; ``delay`` is the countdown for the next attempt when ``retry``."""

    outcome: str
    delay: float | None = None
    attempt: dict | None = None


def next_delay(attempt_number: int, *, delays: Sequence[int], max_retries: int) -> float | None:
    """Seconds to wait after failed attempt ``attempt_number`` (1-based), or None when it was the last one.

    The first attempt is immediate; with the defaults (delays 5,15,45 and 3 retries) the attempts run at
    0, +5, +15 and +45 s. A delay list shorter than the retry count reuses its last value.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt_number}")
    if attempt_number > max_retries:
        return None
    if not delays:
        return 0.0
    return float(delays[min(attempt_number, len(delays)) - 1])


def _response_excerpt(text: str, secrets: list[str]) -> str:
    # Redact before cutting so a secret straddling the cut cannot leave a readable prefix behind.
    return redact_text(text[:RESPONSE_BODY_LIMIT * 4], secrets)[:RESPONSE_BODY_LIMIT]


def _transport_error(exc: Exception, duration_ms: int) -> str:
    if isinstance(exc, BlockedAddressError):
        return f"Webhook URL refused: {exc}"
    if isinstance(exc, UpstreamTimeout):
        return f"Webhook timeout after {duration_ms}ms: {exc}"
    if isinstance(exc, WorkflowError):  # connection errors, oversized bodies, an unusable URL
        return f"Webhook request failed: {exc}"
    return f"Unexpected webhook error: {type(exc).__name__}: {exc}"


def deliver_once(http: Any, job: dict, event: str, attempt_number: int, *, global_secret: str, timeout: float,
                 user_agent: str, clock: Callable[[], float] = time.time) -> dict:
    """Make one POST of a freshly built, signed payload and return the attempt record (never raises for transport).

    Success means a 2xx answer; redirects are not followed and count as failures, like any other status. Without
    any secret nothing is sent: an unsigned webhook could not be told apart from a forged one.
    """
    job_secret, fallback = (job.get("webhook_secret") or "").strip(), (global_secret or "").strip()
    secret = job_secret or fallback
    scrub = [s for s in (job_secret, fallback) if s]
    started = clock()
    payload = build_payload(job, event, now_iso=iso_utc(started), extra_secrets=scrub)
    record: dict[str, Any] = {
        "attempt_number": attempt_number,
        "webhook_url": redact_text(str(job.get("webhook_url") or ""), scrub),
        "event": event,
        "payload": payload,
        "http_status": None,
        "response_body": None,
        "error_message": None,
        "attempted_at": iso_utc(started),
        "duration_ms": 0,
        "success": False,
    }
    if not secret:
        record["error_message"] = NO_SECRET_ERROR
        return record

    body = canonical_body(payload)
    headers = signed_headers(secret=secret, body=body, event=event, msg_id=message_id(str(job.get("job_id")), event),
                             timestamp=int(started), user_agent=user_agent)
    tick = time.monotonic()
    try:
        response = http.request("POST", job["webhook_url"], data=body, headers=headers, timeout=timeout,
                                guarded=True, service="webhook", allow_redirects=False)
    except Exception as exc:  # noqa: BLE001 - every failure is an attempt to record, not a crash of the task
        record["duration_ms"] = int((time.monotonic() - tick) * 1000)
        record["error_message"] = redact_text(_transport_error(exc, record["duration_ms"]), scrub)
        if not isinstance(exc, WorkflowError):
            log.exception("unexpected error delivering webhook", extra={"job_id": job.get("job_id")})
        return record
    record["duration_ms"] = int((time.monotonic() - tick) * 1000)
    record["http_status"] = response.status
    record["response_body"] = _response_excerpt(response.text(), scrub)
    record["success"] = 200 <= response.status < 300
    return record


def _last_error(attempt: dict) -> str:
    """The e-mail's error line: the old ``HTTP <code>: <body>`` for answers, the transport error otherwise."""
    if attempt.get("http_status") is not None:
        body = (attempt.get("response_body") or "")[:200] or "No response body"
        return f"HTTP {attempt['http_status']}: {body}"
    return attempt.get("error_message") or "Unknown error"


def _skip_reason(job: dict | None, event: str, attempt_number: int) -> str | None:
    """Why this attempt must not be made, or None when it is still wanted."""
    if job is None:
        return JOB_NOT_FOUND
    if not job.get("webhook_url"):
        return NO_WEBHOOK_URL
    if job.get("webhook_state") == "delivered":
        return ALREADY_DELIVERED
    if job.get("webhook_state") == "failed" or job.get("webhook_permanently_failed"):
        return PERMANENTLY_FAILED
    if job.get("webhook_event") and job["webhook_event"] != event:
        # The record says which terminal event this job has; sending another would contradict its status.
        return EVENT_MISMATCH
    if attempt_number <= int(job.get("webhook_attempts") or 0):
        return DUPLICATE_ATTEMPT
    return None


def run_delivery(store: Any, http: Any, config_like: Any, job_id: str, event: str, attempt_number: int, *,
                 clock: Callable[[], float] = time.time,
                 send_email: Callable[..., bool] = send_failure_email) -> DeliveryOutcome:
    """Make attempt ``attempt_number`` of ``event`` for ``job_id`` if it is still wanted, and record what happened.

    Returns ``retry`` with the countdown when another attempt is due (the caller re-schedules it; the sweeper's
    ``due_webhooks`` scan is the safety net if that message is lost), ``delivered``, or ``permanently_failed_now``
    after the last attempt (the admin is e-mailed). Other outcomes mean nothing was sent.
    """
    skip = _skip_reason(store.get(job_id), event, attempt_number)
    if skip is not None:
        return DeliveryOutcome(skip)
    # One lock per attempt: the store has no unlock, so a per-job lock would still be held when the next attempt
    # is due. Different attempts of one job never overlap anyway (n+1 is only scheduled once n is recorded).
    lock_ttl = float(config_like.webhook_timeout_seconds) + _LOCK_MARGIN_SECONDS
    if not store.try_lock(f"webhook:{job_id}:{attempt_number}", lock_ttl):
        return DeliveryOutcome(LOCKED)
    job = store.get(job_id)  # re-read under the lock: a racing caller may have recorded this attempt meanwhile
    skip = _skip_reason(job, event, attempt_number)
    if skip is not None:
        return DeliveryOutcome(skip)

    attempt = deliver_once(http, job, event, attempt_number, global_secret=config_like.webhook_secret,
                           timeout=config_like.webhook_timeout_seconds,
                           user_agent=f"{config_like.api_title}/{config_like.api_version}", clock=clock)
    if attempt["success"]:
        store.record_webhook_attempt(job_id, attempt)
        store.set_webhook_state(job_id, "delivered")
        log.info("webhook delivered", extra={"job_id": job_id, "attempt": attempt_number,
                                             "http_status": attempt["http_status"]})
        return DeliveryOutcome(DELIVERED, attempt=attempt)

    delay = next_delay(attempt_number, delays=config_like.webhook_retry_delays,
                       max_retries=config_like.webhook_max_retries)
    if delay is not None:
        due = clock() + delay
        attempt["next_retry_at"] = iso_utc(due)
        store.record_webhook_attempt(job_id, attempt)
        store.set_webhook_state(job_id, "pending", next_attempt_at=due)
        log.warning("webhook attempt failed; retrying", extra={
            "job_id": job_id, "attempt": attempt_number, "delay_seconds": delay,
            "error": _last_error(attempt)})
        return DeliveryOutcome(RETRY, delay=delay, attempt=attempt)

    store.record_webhook_attempt(job_id, attempt)
    store.set_webhook_state(job_id, "failed", permanently_failed=True)
    log.error("webhook permanently failed", extra={"job_id": job_id, "attempt": attempt_number,
                                                   "error": _last_error(attempt)})
    _notify_admin(send_email, http, config_like, dict(job, webhook_attempts=attempt_number), _last_error(attempt))
    return DeliveryOutcome(PERMANENTLY_FAILED_NOW, attempt=attempt)


def _notify_admin(send_email: Callable[..., bool], http: Any, config_like: Any, job: dict, last_error: str) -> None:
    try:
        send_email(http, api_key=config_like.resend_api_key, base_url=config_like.resend_base_url,
                   from_email=config_like.from_email, admin_email=config_like.admin_email, job=job,
                   last_error=last_error)
    except Exception:  # noqa: BLE001 - the delivery is already settled; a broken mailer must not undo that
        log.exception("webhook failure e-mail could not be sent", extra={"job_id": job.get("job_id")})
