"""What a webhook says about a finished job, built from the job record at each attempt.

The field names are the old service's, because client apps parse them; the differences are fixes: the completed
payload's ``cost_data.cost_usd`` carries the real total (the old code read a key the engine never wrote), the failed
payload carries ``user_id`` and ``completed_at``, timestamps end in a single ``Z``, a JSON ``error_message`` that is
not an object no longer crashes the build, and jobs cancelled by a user get a ``workflow.cancelled`` event.
Nothing from the record that is not listed here reaches the payload, so ``webhook_secret`` and ``input_data`` cannot
leak; secret *values* are also scrubbed from every string in case a workflow echoed one into its result.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

from ..jobs.lifecycle import EVENT_CANCELLED, EVENT_COMPLETED, EVENT_FAILED
from ..redaction import redact_text, sanitize, scrub_values

EVENTS = (EVENT_COMPLETED, EVENT_FAILED, EVENT_CANCELLED)

UNKNOWN_ERROR = "Unknown error"


def message_id(job_id: str, event: str) -> str:
    """The ``webhook-id``: identical across retries of one event, so receivers can drop duplicates."""
    return f"msg_{job_id}_{event}"


def _secret_values(job: dict, extra_secrets: Iterable[str]) -> list[str]:
    values = [job.get("webhook_secret") or "", *extra_secrets]
    return [v.strip() for v in values if v and v.strip()]


def _cost_data(job: dict, result: dict) -> dict:
    metadata = result.get("metadata") if isinstance(result.get("metadata"), dict) else {}
    # The engine result is the primary source (it is what the old payload meant to read); the record's totals
    # cover results that carry no metadata.
    tokens = metadata.get("total_tokens") or job.get("total_tokens") or 0
    cost = metadata.get("total_cost_usd") or job.get("total_cost_usd") or 0.0
    return {"total_tokens": tokens, "cost_usd": cost, "llm_calls": metadata.get("llm_calls") or []}


def _error_fields(job: dict, secrets: list[str]) -> dict:
    """``error_message`` (always a string, for legacy consumers) and, when structured, ``error``."""
    structured = job.get("error")
    raw = job.get("error_message")
    if not (isinstance(structured, dict) and structured) and isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        # Only an object is an error context; "123" or "[1]" is just text (the old code crashed on these).
        structured = parsed if isinstance(parsed, dict) and parsed else None
    if isinstance(structured, dict) and structured:
        message = structured.get("message")
        text = str(message) if message not in (None, "") else (raw or UNKNOWN_ERROR)
        return {"error_message": redact_text(str(text), secrets),
                "error": sanitize(structured, truncate=False)}
    if raw not in (None, ""):
        return {"error_message": redact_text(str(raw), secrets)}
    return {"error_message": UNKNOWN_ERROR}


def _base(job: dict, event: str, status: str, now_iso: str) -> dict:
    return {
        "event": event,
        "job_id": job.get("job_id"),
        "status": status,
        "workflow_name": job.get("workflow_name"),
        "user_id": job.get("user_id"),
        "timestamp": now_iso,
        "created_at": job.get("created_at"),
        "completed_at": job.get("completed_at"),
    }


def _completed(job: dict, now_iso: str, secrets: list[str]) -> dict:
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    payload = _base(job, EVENT_COMPLETED, "completed", now_iso)
    payload.update(result=result, cost_data=_cost_data(job, result), duration_ms=job.get("duration_ms"))
    return payload


def _failed(job: dict, now_iso: str, secrets: list[str]) -> dict:
    payload = _base(job, EVENT_FAILED, "failed", now_iso)
    if not payload["created_at"]:
        del payload["created_at"]  # old shape: created_at only when set
    payload.update(_error_fields(job, secrets))
    if job.get("duration_ms"):
        payload["duration_ms"] = job["duration_ms"]
    return payload


def _cancelled(job: dict, now_iso: str, secrets: list[str]) -> dict:
    payload = _base(job, EVENT_CANCELLED, "cancelled", now_iso)
    if job.get("duration_ms"):
        payload["duration_ms"] = job["duration_ms"]
    payload["result"] = job.get("result") or None
    return payload


_BUILDERS: dict[str, Callable[[dict, str, list[str]], dict]] = {
    EVENT_COMPLETED: _completed,
    EVENT_FAILED: _failed,
    EVENT_CANCELLED: _cancelled,
}


def build_payload(job: dict, event: str, *, now_iso: str, extra_secrets: Iterable[str] = ()) -> dict:
    """The payload for ``event`` from a job record (JOBSTORE_CONTRACT fields).

    ``extra_secrets`` are further values to scrub (the global webhook secret); the job's own ``webhook_secret`` is
    always scrubbed. Raises ValueError for an event we do not send.
    """
    builder = _BUILDERS.get(event)
    if builder is None:
        raise ValueError(f"unknown webhook event {event!r}; expected one of {', '.join(EVENTS)}")
    secrets = _secret_values(job, extra_secrets)
    return scrub_values(builder(job, now_iso, secrets), secrets)
