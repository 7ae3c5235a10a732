"""The webhook receiver's checks: both signature schemes the service sends.

* Legacy (kept from the old service): ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.
* Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`` where the key
  is the secret's UTF-8 bytes, or the base64-decoded part after ``whsec_`` for secrets in that format.

Both are verified over the raw body bytes exactly as received, never a re-serialisation.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac

from .messages import Reply, Request


def legacy_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256="):].strip().lower(), expected)


def standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            pass  # not valid base64: fall back to the raw text, as a plain secret
    return secret.encode("utf-8")


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    message = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    return base64.b64encode(hmac.new(standard_key(secret), message, hashlib.sha256).digest()).decode("ascii")


def standard_signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    msg_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp or not signatures:
        return False
    expected = standard_signature(secret, msg_id, timestamp, body)
    # The header may carry several space-separated "v1,<sig>" entries (key rotation); any match is enough.
    return any(version == "v1" and hmac.compare_digest(sig, expected)
               for version, _, sig in (item.partition(",") for item in signatures.split()))


def build_delivery(name: str, request: Request, secret: str | None, response_status: int) -> dict:
    """What the receiver remembers about one delivery. Signature fields are None when no secret is configured."""
    payload = request.json()
    fields = payload if isinstance(payload, dict) else {}
    return {
        "name": name,
        "received_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", errors="replace"),
        "json": payload,
        "event": request.headers.get("x-webhook-event") or fields.get("event"),
        "job_id": fields.get("job_id"),
        "signature_valid": None if secret is None else legacy_signature_valid(
            secret, request.body, request.headers.get("x-webhook-signature")),
        "standard_signature_valid": None if secret is None else standard_signature_valid(
            secret, request.headers, request.body),
        "response_status": response_status,
    }


def describe(delivery: dict) -> str:
    """The one line printed per delivery when the sandbox runs as a program."""
    headers = delivery["headers"]

    def verdict(value: bool | None, header: str) -> str:
        if value is None:
            return "unchecked"
        if header not in headers:
            return "missing"
        return "valid" if value else "invalid"

    return (f"[sandbox] webhook received: event={delivery['event'] or '-'} job={delivery['job_id'] or '-'} "
            f"signature={verdict(delivery['signature_valid'], 'x-webhook-signature')} "
            f"standard_signature={verdict(delivery['standard_signature_valid'], 'webhook-signature')} "
            f"-> HTTP {delivery['response_status']}")


def response(status: int) -> Reply:
    if 200 <= status < 300:
        return Reply.json(status, {"status": "success"})
    return Reply.json(status, {"status": "error", "message": "The sandbox is configured to reject webhooks."})
