"""The admin e-mail sent (through Resend's HTTP API) when a webhook is given up on.

Fixes over the old sender: nothing is sent without an API key (the old code called Resend with an empty key and was
rejected), the copy matches what happened to the job (it always said the job completed successfully), every value
is HTML-escaped (workflow names and receiver responses are not trusted markup), and any 2xx counts as sent.
The request uses the trusted, unguarded session: the Resend base URL is operator configuration, not user input.
"""
from __future__ import annotations

import html
import logging
from typing import Any

from ..redaction import redact_text

log = logging.getLogger(__name__)

_OUTCOME_COPY = {
    "completed": "The workflow completed successfully, but its result could not be delivered to the webhook.",
    "failed": "The workflow failed, and the failure notification could not be delivered to the webhook.",
    "cancelled": "The job was cancelled, and the cancellation notice could not be delivered to the webhook.",
}

_TROUBLESHOOTING = (
    "Check that the webhook endpoint is up and reachable from the worker.",
    "Check that the endpoint answers with a 2xx status within the webhook timeout, and does not redirect.",
    "Check that the receiver verifies signatures with the same secret (per-job webhook_secret or "
    "LLM_WEBHOOK_SECRET).",
    "Fetch the job's result from GET /api/v1/status/<job_id> if the client still needs it.",
)


def _outcome_copy(status: Any) -> str:
    return _OUTCOME_COPY.get(str(status), f"The job ended with status '{status}', and its webhook could not be "
                                          "delivered.")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def failure_email_html(job: dict, last_error: str) -> str:
    """The message body; public so operators can preview it without sending."""
    rows = (
        ("Job ID", job.get("job_id")),
        ("Workflow", job.get("workflow_name")),
        ("Job status", job.get("status")),
        ("Webhook URL", redact_text(str(job.get("webhook_url") or ""))),
        ("Delivery attempts", job.get("webhook_attempts")),
        ("Last error", redact_text(last_error or "")),
    )
    table = "".join(f"<tr><th align=\"left\">{_esc(label)}</th><td>{_esc(value)}</td></tr>" for label, value in rows)
    steps = "".join(f"<li>{_esc(step)}</li>" for step in _TROUBLESHOOTING)
    return (
        "<h2>Webhook delivery failed</h2>"
        f"<p>{_esc(_outcome_copy(job.get('status')))} All delivery attempts were used up; no further attempts "
        "will be made.</p>"
        f"<table>{table}</table>"
        f"<h3>Troubleshooting</h3><ol>{steps}</ol>"
    )


def send_failure_email(http: Any, *, api_key: str, base_url: str, from_email: str, admin_email: str, job: dict,
                       last_error: str, timeout: float = 10.0) -> bool:
    """Tell the admin a webhook was given up on. True iff Resend accepted the message; never raises."""
    if not (api_key or "").strip():
        log.warning("webhook failure e-mail not sent: RESEND_API_KEY is not configured",
                    extra={"job_id": job.get("job_id")})
        return False
    if not admin_email:
        log.warning("webhook failure e-mail not sent: ADMIN_EMAIL is not configured",
                    extra={"job_id": job.get("job_id")})
        return False
    message = {
        "from": from_email,
        "to": [admin_email],
        "subject": f"Webhook delivery failed: {job.get('workflow_name')}",
        "html": failure_email_html(job, last_error),
    }
    try:
        response = http.request("POST", f"{base_url.rstrip('/')}/emails", json=message,
                                headers={"Authorization": f"Bearer {api_key.strip()}"}, timeout=timeout,
                                guarded=False, service="resend")
    except Exception as exc:  # noqa: BLE001 - a failed notification must never break webhook bookkeeping
        log.error("webhook failure e-mail not sent: %s", redact_text(str(exc), [api_key]),
                  extra={"job_id": job.get("job_id")})
        return False
    if 200 <= response.status < 300:
        return True
    log.error("webhook failure e-mail rejected by Resend: HTTP %s %s", response.status,
              redact_text(response.text()[:200], [api_key]), extra={"job_id": job.get("job_id")})
    return False
