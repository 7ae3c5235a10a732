"""Webhook body serialisation and the two signature schemes we send.

Receivers written for the old service verify ``X-Webhook-Signature: sha256=<hex>`` over the exact body bytes, so the
body must be byte-for-byte what the old service produced (sorted keys, compact separators, ASCII escapes) and that
header is kept unchanged. The old scheme signs no timestamp, so a captured request can be replayed forever; the
Standard Webhooks headers (https://www.standardwebhooks.com) are sent alongside so receivers that want replay
protection can check ``webhook-timestamp`` and deduplicate by ``webhook-id``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Mapping

LEGACY_PREFIX = "sha256="
STANDARD_VERSION = "v1"
STANDARD_SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


def canonical_body(payload: dict) -> bytes:
    """The exact bytes that are signed and sent; re-serialising elsewhere would break every signature."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def _require_secret(secret: str) -> str:
    stripped = (secret or "").strip()
    if not stripped:
        # An empty HMAC key is a signature anybody can forge; refusing here keeps an unsigned delivery impossible.
        raise ValueError("a non-empty webhook secret is required to sign or verify")
    return stripped


def legacy_signature(secret: str, body: bytes) -> str:
    """The old service's header value: HMAC-SHA256 keyed with the stripped secret's UTF-8 bytes, lowercase hex."""
    key = _require_secret(secret).encode("utf-8")
    return LEGACY_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def standard_key(secret: str) -> bytes:
    """The HMAC key for the Standard Webhooks signature.

    The standard distributes secrets as ``whsec_<base64 key>``; for such a secret the key is the decoded bytes, so
    off-the-shelf Standard Webhooks libraries verify our requests unchanged. Our existing secrets
    (``LLM_WEBHOOK_SECRET``, per-job ``webhook_secret``) are free text, not base64: for those the key is the stripped
    secret's UTF-8 bytes, the same key the legacy signature uses, so one shared secret serves both headers. A
    ``whsec_`` secret whose remainder is not valid base64 is treated as free text too (the whole string is the
    key) rather than failing the delivery.
    """
    stripped = _require_secret(secret)
    if stripped.startswith(STANDARD_SECRET_PREFIX):
        try:
            decoded = base64.b64decode(stripped[len(STANDARD_SECRET_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded:
            return decoded
    return stripped.encode("utf-8")


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>")>`` per the Standard Webhooks spec."""
    signed = f"{msg_id}.{int(timestamp)}.".encode("utf-8") + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return f"{STANDARD_VERSION}," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secret: str, body: bytes, event: str, msg_id: str, timestamp: int,
                   user_agent: str) -> dict[str, str]:
    """Every header a webhook request carries: the old ones plus the Standard Webhooks trio."""
    return {
        "Content-Type": "application/json",
        "X-Webhook-Signature": legacy_signature(secret, body),
        "X-Webhook-Event": event,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": standard_signature(secret, msg_id, timestamp, body),
        "User-Agent": user_agent,
    }


def _same(a: str, b: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a hostile header may contain anything.
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def verify_legacy(secret: str, body: bytes, header: str | None) -> bool:
    """Receiver-side check of ``X-Webhook-Signature`` (constant-time); False for a missing header or secret."""
    if not header or not header.startswith(LEGACY_PREFIX) or not (secret or "").strip():
        return False
    return _same(header, legacy_signature(secret, body))


def verify_standard(secret: str, headers: Mapping[str, Any], body: bytes, *,
                    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """Receiver-side check of the Standard Webhooks headers, rejecting timestamps outside the tolerance window.

    ``webhook-signature`` may list several space-separated signatures (secret rotation); any valid ``v1`` one is
    accepted, as the spec requires.
    """
    if not (secret or "").strip():
        return False
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id, raw_ts, sig_header = (lowered.get(name) for name in
                                  ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not raw_ts or not sig_header:
        return False
    try:
        timestamp = int(str(raw_ts))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = standard_signature(secret, str(msg_id), timestamp, body)
    matches = [_same(candidate, expected) for candidate in str(sig_header).split()]
    return any(matches)
