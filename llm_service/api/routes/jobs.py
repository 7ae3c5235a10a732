"""Job status, listing, details, cancellation, webhook attempts and bulk deletion (``/api/v1/status/<id>``,
``/api/v1/jobs...``)."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response

from ...jobs.lifecycle import EVENT_CANCELLED, RUNNING_STATUSES, STATUSES, TERMINAL_STATUSES, dispatch_webhook
from ...logs import event
from ..context import ApiContext, api_context
from ..endpoints import Failure, Reply, endpoint, respond
from ..errors import ApiError
from ..ids import canonical_uuid, job_id_or_400, job_not_found
from ..schemas import (
    EXAMPLE_JOB_ID,
    EXAMPLE_TIME,
    EXAMPLE_USER_ID,
    PERIODS,
    STATUS_FILTERS,
    BulkDeleteRequestSchema,
    BulkDeleteResponseSchema,
    CancelResponseSchema,
    JobDetailSchema,
    JobListQuerySchema,
    JobListSchema,
    StatusResponseSchema,
    WebhookAttemptsSchema,
)

log = logging.getLogger("llm_service.api")
bp = Blueprint("jobs", __name__)

HIDDEN_FIELDS = frozenset({"webhook_secret", "lease_token", "worker_id"})
LIMIT_RESULTS_VALUES = ["1-500", "Today", "7 Days", "30 Days"]
MAX_LIMIT_RESULTS = 500
CANCELLING_MESSAGE = "the running job will stop at its next step or upstream wait"

_JOB_ID_PARAM = {"job_id": "The job id (a UUID; hyphenated, 32 hex digits, braces and urn:uuid: forms accepted)."}
_INVALID_ID = Failure(400, "InvalidJobID", "The id is not a UUID",
                      {"message": "Invalid job ID format (expected UUID): invalid-uuid", "job_id": "invalid-uuid"})
_NOT_FOUND = Failure(404, "JobNotFound", "No such job",
                     {"message": f"Job not found: {EXAMPLE_JOB_ID}", "job_id": EXAMPLE_JOB_ID})


def _get_job(raw_id: str) -> tuple[str, dict]:
    job_id = job_id_or_400(raw_id)
    record = api_context().store.get(job_id)
    if record is None:
        raise job_not_found(raw_id)
    return job_id, record


def _revoke(ctx: ApiContext, job_id: str) -> None:
    """Best effort: the worker's claim refuses a cancelled job anyway, revoking only saves it the round trip."""
    try:
        ctx.queue.revoke(job_id)
    except Exception:
        log.warning("revoke of job %s failed", job_id, extra={"job_id": job_id})


# --------------------------------------------------------------------------------------------------------------
# Status and details


def progress_fields(record: dict) -> dict:
    """What the client app's progress bar reads: the step running now (else the one that finished last), its
    display name, and the share of steps done (100 once completed)."""
    progress = record.get("progress") or {}
    step_id = progress.get("active_step") or progress.get("current_step")
    name = progress.get("active_step_name") if progress.get("active_step") else progress.get("current_step_name")
    if record["status"] == "completed":
        percentage = 100
    else:
        done, total = progress.get("steps_completed") or 0, progress.get("total_steps") or 0
        percentage = min(100, int(done * 100 / total)) if total else 0
    return {"current_step_id": step_id, "current_step_name": (name or step_id) if step_id else None,
            "progress_percentage": percentage}


@bp.get("/status/<job_id>")
@endpoint(
    summary="Job status",
    description="The old status shape. `result` is set once the job is completed, failed or cancelled; "
                "`current_step`, `steps_completed` and `total_steps` only while it is processing.",
    tag="jobs", path_params=_JOB_ID_PARAM, failures=[_INVALID_ID, _NOT_FOUND],
    replies=[Reply(200, "The job's status", StatusResponseSchema, {
        "job_id": EXAMPLE_JOB_ID, "status": "processing", "workflow_name": "emergency_contacts",
        "created_at": EXAMPLE_TIME, "started_at": EXAMPLE_TIME, "completed_at": None, "duration_ms": None,
        "result": None, "error_message": None, "current_step": "fetch_weather", "steps_completed": 2,
        "total_steps": 7, "webhook_url": "https://app.example.com/api/webhooks/llm-callback", "error": None,
        "rerun_of": None})])
def job_status(job_id: str) -> Response:
    canonical, record = _get_job(job_id)
    return respond(StatusResponseSchema, status_body(canonical, record))


def status_body(canonical: str, record: dict) -> dict:
    """The status endpoint's answer for a job (the event stream's terminal event carries it too)."""
    status = record["status"]
    progress = (record.get("progress") or {}) if status == "processing" else {}
    return {
        "job_id": canonical, "status": status, "workflow_name": record["workflow_name"],
        "created_at": record["created_at"], "started_at": record["started_at"],
        "completed_at": record["completed_at"], "duration_ms": record["duration_ms"],
        "result": record["result"] if status in TERMINAL_STATUSES else None, "error_message": record["error_message"],
        "current_step": progress.get("current_step"), "steps_completed": progress.get("steps_completed"),
        "total_steps": progress.get("total_steps"), "webhook_url": record["webhook_url"], "error": record["error"],
        "rerun_of": record["rerun_of"],
    }


@bp.get("/jobs/<job_id>")
@endpoint(
    summary="Job details",
    description="The whole job record (without its webhook secret and lease data), its step entries, its LLM "
                "usage records and a webhook delivery summary.",
    tag="jobs", path_params=_JOB_ID_PARAM, failures=[_INVALID_ID, _NOT_FOUND],
    replies=[Reply(200, "The job", JobDetailSchema, {
        "job_id": EXAMPLE_JOB_ID, "celery_task_id": EXAMPLE_JOB_ID, "workflow_name": "emergency_contacts",
        "workflow_version": "2.0.0", "status": "completed", "priority": 0, "user_id": EXAMPLE_USER_ID,
        "input_data": {"formData": {"city": "Seattle"}}, "created_at": EXAMPLE_TIME, "duration_ms": 5321,
        "result": {"workflow_name": "emergency_contacts", "success": True, "output": {}},
        "steps": [{"step_id": "fetch_weather", "success": True}], "usage": [],
        "webhook": {"state": "delivered", "attempts": 1, "permanently_failed": False, "next_attempt_at": None}})])
def job_detail(job_id: str) -> Response:
    canonical, record = _get_job(job_id)
    store = api_context().store
    data = {key: value for key, value in record.items() if key not in HIDDEN_FIELDS}
    result = record["result"] if isinstance(record["result"], dict) else {}
    data.update(
        progress_fields(record), output=result.get("output"), metadata=result.get("metadata"),
        error_details=record["error"],
        job_id=canonical, steps=store.steps(canonical), usage=store.usage(canonical),
        webhook={"state": record["webhook_state"], "attempts": record["webhook_attempts"],
                 "permanently_failed": record["webhook_permanently_failed"],
                 "next_attempt_at": record["webhook_next_attempt_at"]})
    return respond(JobDetailSchema, data)


@bp.get("/jobs/<job_id>/webhooks")
@endpoint(
    summary="Webhook delivery attempts of a job",
    tag="jobs", path_params=_JOB_ID_PARAM, failures=[_INVALID_ID, _NOT_FOUND],
    replies=[Reply(200, "Delivery state and every attempt", WebhookAttemptsSchema, {
        "job_id": EXAMPLE_JOB_ID, "webhook_url": "https://app.example.com/api/webhooks/llm-callback",
        "state": "delivered", "permanently_failed": False,
        "attempts": [{"attempt_number": 1, "http_status": 200, "duration_ms": 84, "attempted_at": EXAMPLE_TIME}]})])
def job_webhooks(job_id: str) -> Response:
    canonical, record = _get_job(job_id)
    return respond(WebhookAttemptsSchema, {
        "job_id": canonical, "webhook_url": record["webhook_url"], "state": record["webhook_state"],
        "permanently_failed": record["webhook_permanently_failed"],
        "attempts": api_context().store.webhook_attempts(canonical)})


# --------------------------------------------------------------------------------------------------------------
# Cancellation


@bp.post("/jobs/<job_id>/cancel")
@endpoint(
    summary="Cancel a job",
    description="A queued job is cancelled at once (200; its webhook, if any, gets `workflow.cancelled`). A running "
                "job is asked to stop (202) and ends as `cancelled` at its next step or upstream wait.",
    tag="jobs", path_params=_JOB_ID_PARAM,
    failures=[_INVALID_ID, _NOT_FOUND,
              Failure(409, "JobAlreadyFinished", "The job already reached a final status",
                      {"message": f"Job {EXAMPLE_JOB_ID} already finished with status 'completed'",
                       "job_id": EXAMPLE_JOB_ID, "status": "completed"})],
    replies=[Reply(200, "Cancelled", CancelResponseSchema, {"job_id": EXAMPLE_JOB_ID, "status": "cancelled"}),
             Reply(202, "Cancellation requested; the running job stops soon", CancelResponseSchema,
                   {"job_id": EXAMPLE_JOB_ID, "status": "cancelling", "message": CANCELLING_MESSAGE})])
def cancel_job(job_id: str) -> Response:
    canonical = job_id_or_400(job_id)
    ctx = api_context()
    outcome = ctx.store.cancel(canonical)
    if outcome == "not_found":
        raise job_not_found(job_id)
    if outcome == "finished":
        record = ctx.store.get(canonical) or {}
        status = record.get("status")
        raise ApiError(409, "JobAlreadyFinished", f"Job {canonical} already finished with status '{status}'",
                       job_id=canonical, status=status)
    event(log, "job.cancel", job_id=canonical, outcome=outcome)
    if outcome == "cancelling":
        return respond(CancelResponseSchema, {"job_id": canonical, "status": "cancelling",
                                              "message": CANCELLING_MESSAGE}, 202)
    _revoke(ctx, canonical)
    record = ctx.store.get(canonical)
    if record is not None and record.get("webhook_url"):
        dispatch_webhook(ctx.store, ctx.queue, canonical, EVENT_CANCELLED, now=time.time())
    return respond(CancelResponseSchema, {"job_id": canonical, "status": "cancelled"})


# --------------------------------------------------------------------------------------------------------------
# Listing


def _statuses(value: str | None) -> list[str] | None:
    if value in (None, "", "all"):
        return None
    if value == "running":
        return list(RUNNING_STATUSES)
    if value in STATUSES:
        return [value]
    valid = ", ".join(f"'{s}'" for s in STATUS_FILTERS)
    raise ApiError(400, "InvalidStatusFilter", f"Invalid status filter: '{value}'. Valid values: {valid}",
                   valid_values=list(STATUS_FILTERS))


def _user_id(value: str | None) -> str | None:
    if not value:
        return None
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ApiError(400, "InvalidUserID", f"Invalid user_id format (expected UUID): {value}", user_id=value)
    return canonical


def _window(value: str | None, limit: int, now: float) -> tuple[float | None, int]:
    """``(since, limit)`` for ``limit_results``: a rolling period, or a number that replaces ``limit``."""
    if not value:
        return None, limit
    if value in PERIODS:
        return now - PERIODS[value] * 86400, limit
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, "InvalidLimitResults",
                       f"Invalid limit_results value: '{value}'. Expected: numeric value (1-500), 'Today', "
                       "'7 Days', or '30 Days'", limit_results=value, valid_values=list(LIMIT_RESULTS_VALUES)
                       ) from None
    if not 1 <= number <= MAX_LIMIT_RESULTS:
        raise ApiError(400, "InvalidLimitResults", f"Numeric limit must be between 1-500 (got: {value})",
                       limit_results=value)
    return None, number


@bp.get("/jobs")
@endpoint(
    summary="List jobs",
    description="Newest first. Filters combine with AND; `total` counts every match before paging. Checked in "
                "this order: status, user_id, limit_results.",
    tag="jobs", query=JobListQuerySchema,
    failures=[
        Failure(400, "InvalidStatusFilter", "Unknown status filter",
                {"message": "Invalid status filter: 'bogus'. Valid values: "
                            + ", ".join(f"'{s}'" for s in STATUS_FILTERS), "valid_values": STATUS_FILTERS}),
        Failure(400, "InvalidUserID", "user_id is not a UUID",
                {"message": "Invalid user_id format (expected UUID): x", "user_id": "x"}),
        Failure(400, "InvalidLimitResults", "limit_results is not a period or a number 1-500",
                {"message": "Numeric limit must be between 1-500 (got: 0)", "limit_results": "0"}),
    ],
    replies=[Reply(200, "A page of job summaries", JobListSchema, {
        "jobs": [{"job_id": EXAMPLE_JOB_ID, "workflow_name": "emergency_contacts", "status": "completed",
                  "priority": 0, "user_id": EXAMPLE_USER_ID, "username": "jane", "action": "generate_plan",
                  "created_at": EXAMPLE_TIME, "started_at": EXAMPLE_TIME, "completed_at": EXAMPLE_TIME,
                  "duration_ms": 5321, "error_message": None}],
        "total": 1, "limit": 50, "offset": 0})])
def list_jobs(query: dict) -> Response:
    statuses = _statuses(query.get("status"))
    user_id = _user_id(query.get("user_id"))
    since, limit = _window(query.get("limit_results"), query["limit"], time.time())
    jobs, total = api_context().store.list_jobs(statuses=statuses, user_id=user_id, since=since, limit=limit,
                                                offset=query["offset"])
    return respond(JobListSchema, {"jobs": jobs, "total": total, "limit": limit, "offset": query["offset"]})


# --------------------------------------------------------------------------------------------------------------
# Bulk deletion


def _count(n: int, noun: str, suffix: str = "") -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}{suffix}"


def bulk_delete_message(deleted: int, terminated: int, removed: int) -> str:
    parts = []
    if deleted:
        parts.append(_count(deleted, "job"))
    if terminated:
        parts.append(_count(terminated, "running task", " terminated"))
    if removed:
        parts.append(_count(removed, "queued task", " removed"))
    return "Successfully deleted " + ", ".join(parts) if parts else "No jobs deleted"


@bp.delete("/jobs/bulk")
@endpoint(
    summary="Stop and delete jobs",
    description="Queued jobs are cancelled and removed before they run (`redis_removed`); running jobs are told "
                "to stop (`tasks_revoked`); then every listed job is deleted with its steps, usage and webhook "
                "records. Deleted jobs get no webhook. Any invalid id rejects the whole request.",
    tag="jobs", body=BulkDeleteRequestSchema, body_example={"job_ids": [EXAMPLE_JOB_ID]},
    failures=[
        Failure(400, "EmptyJobIdsList", "job_ids is empty", {"message": "job_ids list cannot be empty"}),
        Failure(400, "InvalidJobIDs", "Some ids are not UUIDs",
                {"message": "Invalid job ID format (expected UUID)", "invalid_ids": ["x"]}),
    ],
    replies=[Reply(200, "What was deleted", BulkDeleteResponseSchema, {
        "deleted_count": 1, "tasks_revoked": 0, "redis_removed": 1, "job_ids": [EXAMPLE_JOB_ID],
        "message": "Successfully deleted 1 job, 1 queued task removed"})])
def bulk_delete(body: dict) -> Response:
    raw_ids = body["job_ids"]
    if not raw_ids:
        raise ApiError(400, "EmptyJobIdsList", "job_ids list cannot be empty")
    invalid = [raw for raw in raw_ids if canonical_uuid(raw) is None]
    if invalid:
        raise ApiError(400, "InvalidJobIDs", "Invalid job ID format (expected UUID)", invalid_ids=invalid)
    ctx = api_context()
    job_ids = list(dict.fromkeys(canonical_uuid(raw) for raw in raw_ids))
    terminated = removed = 0
    for job_id in job_ids:
        outcome = ctx.store.cancel(job_id)
        if outcome == "cancelled":
            _revoke(ctx, job_id)
            removed += 1
        elif outcome == "cancelling":
            terminated += 1
    deleted = [entry["job_id"] for entry in ctx.store.delete(job_ids)]
    event(log, "jobs.deleted", requested=len(job_ids), deleted=len(deleted), tasks_revoked=terminated,
          redis_removed=removed)
    return respond(BulkDeleteResponseSchema, {
        "deleted_count": len(deleted), "tasks_revoked": terminated, "redis_removed": removed, "job_ids": deleted,
        "message": bulk_delete_message(len(deleted), terminated, removed)})
