"""Re-running a finished job from a step (``POST /api/v1/jobs/<id>/rerun``).

The new job reuses the recorded outputs of every step before the chosen one instead of paying for those upstream
calls again (``engine/reuse.py`` selects and checks them); it is an ordinary job otherwise, with ``rerun_of``
naming the earlier one.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response

from ...engine.reuse import RerunRefused, first_unfinished_step, records_to_reuse
from ...jobs.lifecycle import TERMINAL_STATUSES
from ...logs import event
from ..context import api_context
from ..endpoints import Failure, Reply, endpoint, respond
from ..errors import ApiError
from ..ids import job_id_or_400, job_not_found
from ..openapi import QUEUE_DOWN
from ..schemas import EXAMPLE_JOB_ID, EXAMPLE_TIME, RerunRequestSchema, RerunResponseSchema
from .workflows import check_webhook_url, create_and_enqueue, load_for_submit

log = logging.getLogger("llm_service.api")
bp = Blueprint("reruns", __name__)

_REFUSALS = {"unknown_step": (422, "UnknownStep"), "not_recorded": (422, "OutputsNotRecorded"),
             "definition_changed": (409, "DefinitionChanged")}
_NEW_ID = "5f0c7e2a-9b1d-4c3e-8a7f-6d5e4c3b2a19"


@bp.post("/jobs/<job_id>/rerun")
@endpoint(
    summary="Re-run a finished job from a step",
    description="Queues a new job for the same workflow, input and webhook (each can be overridden) that reuses "
                "the recorded outputs of the steps before `from_step` instead of executing them again. Default "
                "`from_step`: the first step that did not succeed, for a failed or cancelled job; a completed job "
                "needs it. Refused when the earlier job is still running, when a step to reuse has no recorded "
                "output, or when its definition changed since.",
    tag="jobs", path_params={"job_id": "The job to re-run (a UUID)."}, body=RerunRequestSchema,
    body_optional=True, body_example={"from_step": "generate_plan"},
    replies=[Reply(202, "Re-run queued", RerunResponseSchema, {
        "job_id": _NEW_ID, "celery_task_id": _NEW_ID, "status": "queued", "created_at": EXAMPLE_TIME,
        "estimated_wait_seconds": None,
        "status_url": f"/api/v1/status/{_NEW_ID}", "rerun_of": EXAMPLE_JOB_ID, "from_step": "generate_plan",
        "reused_steps": ["fetch_weather", "summarise_weather"]})],
    failures=[
        Failure(400, "InvalidJobID", "The id is not a UUID",
                {"message": "Invalid job ID format (expected UUID): x", "job_id": "x"}),
        Failure(404, "JobNotFound", "No such job", {"message": f"Job not found: {EXAMPLE_JOB_ID}",
                                                    "job_id": EXAMPLE_JOB_ID}),
        Failure(409, "JobNotFinished", "The job is still queued or running",
                {"message": "Job is processing; only a completed, failed or cancelled job can be re-run.",
                 "job_id": EXAMPLE_JOB_ID, "status": "processing"}),
        Failure(409, "DefinitionChanged", "A step to reuse is defined differently now",
                {"message": "The definition of step(s) fetch_weather changed since the earlier run, so their "
                            "recorded outputs no longer match; re-run from 'fetch_weather' (or earlier) or submit "
                            "the workflow again.", "changed_steps": ["fetch_weather"]}),
        Failure(422, "FromStepRequired", "A completed job needs from_step",
                {"message": "Job completed: name the step to re-run from in from_step.", "job_id": EXAMPLE_JOB_ID}),
        Failure(422, "UnknownStep", "from_step is not a step of the workflow",
                {"message": "Step 'x' is not a step of workflow 'emergency_contacts' (steps: ...)",
                 "from_step": "x"}),
        Failure(422, "OutputsNotRecorded", "A step to reuse has no recorded output",
                {"message": "The outputs of step(s) fetch_weather were not recorded by the earlier run, so the "
                            "workflow cannot be re-run from 'generate_plan'; re-run it from an earlier step or "
                            "submit it again.", "missing_steps": ["fetch_weather"]}),
        QUEUE_DOWN,
    ])
def rerun_job(job_id: str, body: dict) -> Response:
    ctx = api_context()
    earlier_id = job_id_or_400(job_id)
    earlier = ctx.store.get(earlier_id)
    if earlier is None:
        raise job_not_found(job_id)
    if earlier["status"] not in TERMINAL_STATUSES:
        raise ApiError(409, "JobNotFinished", f"Job is {earlier['status']}; only a completed, failed or cancelled "
                       "job can be re-run.", job_id=earlier_id, status=earlier["status"])
    webhook_url, webhook_secret = earlier["webhook_url"], earlier["webhook_secret"]
    if body["webhook_url"] is not None:
        check_webhook_url(ctx, body["webhook_url"])
        webhook_url = body["webhook_url"]
    workflow = load_for_submit(ctx, earlier["workflow_name"])
    records = ctx.store.step_records(earlier_id)
    from_step = body["from_step"] or _default_from_step(earlier, workflow, records)
    try:
        reuse = records_to_reuse(workflow, from_step, records, earlier["step_fingerprints"] or {},
                                 ctx.services.engine.prompts)
    except RerunRefused as refused:
        status, code = _REFUSALS[refused.reason]
        raise ApiError(status, code, str(refused), **refused.details) from None
    submission = {
        "workflow_name": earlier["workflow_name"], "priority": earlier["priority"], "user_id": earlier["user_id"],
        "username": earlier["username"], "action": earlier["action"], "debug_mode": earlier["debug_mode"],
        "input_data": body["input_data"] if body["input_data"] is not None else earlier["input_data"],
        "webhook_url": webhook_url, "webhook_secret": webhook_secret,
    }
    new = create_and_enqueue(ctx, submission, workflow, extra={"rerun_of": earlier_id,
                                                               "rerun_from_step": from_step}, reuse=reuse)
    new_id = new["job_id"]
    reused = [step.id for step in workflow.walk() if step.id in reuse]
    event(log, "job.rerun", job_id=new_id, rerun_of=earlier_id, from_step=from_step, reused_steps=len(reused))
    status_url = f"/api/v1/status/{new_id}"
    return respond(RerunResponseSchema, {
        "job_id": new_id, "celery_task_id": new_id, "status": "queued", "created_at": new["created_at"],
        "estimated_wait_seconds": None,
        "status_url": status_url, "rerun_of": earlier_id, "from_step": from_step, "reused_steps": reused},
        202, headers={"Location": status_url})


def _default_from_step(earlier: dict, workflow, records: dict) -> str:
    """Where a failed or cancelled job stopped; a completed job has no such step, so the client must choose."""
    stopped = first_unfinished_step(workflow, records) if earlier["status"] != "completed" else None
    if stopped is None:
        raise ApiError(422, "FromStepRequired", f"Job {earlier['status']} with every step done: name the step to "
                       "re-run from in from_step.", job_id=earlier["job_id"])
    return stopped
