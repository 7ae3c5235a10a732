"""Job and user ids: any spelling Python's ``uuid.UUID`` accepts (hyphenated, 32 hex digits, braces, ``urn:uuid:``),
used internally in canonical lower-case hyphenated form."""
from __future__ import annotations

from ..jobs.lifecycle import canonical_uuid
from .errors import ApiError

__all__ = ["canonical_uuid", "job_id_or_400", "job_not_found"]


def job_id_or_400(raw: str) -> str:
    job_id = canonical_uuid(raw)
    if job_id is None:
        raise ApiError(400, "InvalidJobID", f"Invalid job ID format (expected UUID): {raw}", job_id=raw)
    return job_id


def job_not_found(raw: str) -> ApiError:
    return ApiError(404, "JobNotFound", f"Job not found: {raw}", job_id=raw)
