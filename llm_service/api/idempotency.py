"""The ``Idempotency-Key`` header of ``POST /api/v1/workflow``: a client that retries a submission (a timed-out
request, a lost answer) gets the job of its first attempt instead of paying for a second one.

Keys are scoped per API secret (two secrets never see each other's keys) and stored hashed; the request they were
first used with is remembered as a fingerprint of the validated body, so the same key with another body is refused
rather than silently answered with an unrelated job.
"""
from __future__ import annotations

import hashlib
import json
import re

from flask import request

from ..jobs import IdempotencyKey
from .auth import api_key_id
from .errors import ApiError, validation_error

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_LENGTH = 255
# Printable ASCII; no leading or trailing space (HTTP strips those, so they could not round-trip).
_PATTERN = r"^[!-~]([ -~]{0,%d}[!-~])?$" % (MAX_LENGTH - 2)
_VALID = re.compile(_PATTERN)
HEADER_PARAMETER = {
    "description": f"Optional, 1-{MAX_LENGTH} printable ASCII characters. A repeat with the same key and the same "
                   "body within IDEMPOTENCY_TTL_SECONDS answers 200 with the job of the first request and "
                   "`Idempotent-Replayed: true`; the same key with a different body is a 422 "
                   "`IdempotencyKeyReused`. Keys are scoped per API secret.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": _PATTERN},
    "example": "order-42-submit"}
REPLAYED_DESCRIPTION = "`true` when the answer is the job of an earlier request with the same Idempotency-Key."


def requested_key(secret: str, body: dict, ttl_seconds: float) -> IdempotencyKey | None:
    """The request's key as the store keeps it, or None without the header; 422 for a malformed header."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _VALID.match(raw):
        raise validation_error([{"loc": ["header", HEADER], "type": "value_error",
                                 "msg": f"Must be 1-{MAX_LENGTH} printable ASCII characters, without leading or "
                                        "trailing spaces."}])
    name = f"{api_key_id(secret)}:{hashlib.sha256(raw.encode('ascii')).hexdigest()}"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    fingerprint = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return IdempotencyKey(name=name, fingerprint=fingerprint, ttl_seconds=ttl_seconds)


def key_reused(job_id: str) -> ApiError:
    return ApiError(422, "IdempotencyKeyReused",
                    f"This Idempotency-Key was already used with a different request body (job {job_id}); use a "
                    "new key for a new request, or resend the original body to get its job.", job_id=job_id)
