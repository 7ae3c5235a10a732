"""Submitting, validating, listing and describing workflows (``/api/v1/workflow``, ``/api/v1/workflow/validate``,
``/api/v1/workflows``, ``/api/v1/workflows/<name>``)."""
from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response

from ...engine import Workflow, WorkflowInvalid, WorkflowLoadError, WorkflowNotFound
from ...engine.diagram import render_diagram
from ...engine.plan import build_plan
from ...engine.reuse import definition_hash, step_fingerprints
from ...http.ssrf import UnsafeURLError, check_url
from ...jobs import IdempotencyKey, IdempotencyKeyTaken, StoreUnavailable
from ...logs import event
from ..auth import api_key_id, presented_secret
from ..context import ApiContext, api_context
from ..endpoints import Failure, Reply, endpoint, respond
from ..errors import ApiError
from ..idempotency import HEADER_PARAMETER, REPLAYED_DESCRIPTION, REPLAYED_HEADER, key_reused, requested_key
from ..idempotency import HEADER as IDEMPOTENCY_HEADER
from ..inspection import inspect_workflow, load_error_message
from ..openapi import QUEUE_DOWN
from ..schemas import (
    EXAMPLE_JOB_ID,
    EXAMPLE_TIME,
    SubmitRequestSchema,
    SubmitResponseSchema,
    ValidateRequestSchema,
    ValidateResponseSchema,
    WorkflowDetailSchema,
    WorkflowDiagramQuerySchema,
    WorkflowListSchema,
)

log = logging.getLogger("llm_service.api")
bp = Blueprint("workflows", __name__)

INVALID_PREFIX = "Workflow definition invalid: "
_SUBMIT_EXAMPLE = {
    "workflow_name": "emergency_contacts",
    "input_data": {"formData": {"location": {"city": "Seattle", "lat": 47.6062, "lng": -122.3321}}},
    "webhook_url": "https://app.example.com/api/webhooks/llm-callback",
    "webhook_secret": "whsec-0123456789", "user_id": "9b2f6c1d-4e8a-4b3c-8f7d-1a2b3c4d5e6f", "priority": 5,
    "username": "jane", "action": "generate_plan",
}

# What loading a definition can answer (load_for_submit), documented on every endpoint that loads one.
_INVALID_DEFINITION = Failure(
    400, "WorkflowValidationError", "The workflow definition is invalid",
    {"message": "Workflow definition invalid: definitions/x.json: steps: A workflow needs at least one step.",
     "workflow_name": "x", "problems": ["definitions/x.json: steps: A workflow needs at least one step."]})
_NO_DEFINITION = Failure(404, "WorkflowNotFound", "No definition with that name",
                         {"message": "Workflow 'nonexistent_workflow' not found",
                          "workflow_name": "nonexistent_workflow"})
_UNREADABLE_DEFINITION = Failure(500, "WorkflowLoadError", "The definition file cannot be read",
                                 {"message": "Failed to load workflow: Invalid JSON in workflow file 'x.json': "
                                             "Expecting value: line 1 column 1 (char 0)", "workflow_name": "x"})


def load_for_submit(ctx: ApiContext, name: str) -> Workflow:
    """The definition, or the old API's error answers (404 not found, 400 invalid, 500 unreadable)."""
    try:
        workflow = ctx.services.engine.load(name)
    except WorkflowNotFound:
        raise ApiError(404, "WorkflowNotFound", f"Workflow '{name}' not found", workflow_name=name) from None
    except WorkflowInvalid as exc:
        message = str(exc) if str(exc).startswith(INVALID_PREFIX) else INVALID_PREFIX + str(exc)
        raise ApiError(400, "WorkflowValidationError", message, workflow_name=name,
                       problems=list(exc.problems)) from None
    except WorkflowLoadError as exc:
        raise ApiError(500, "WorkflowLoadError", load_error_message(exc), workflow_name=name) from None
    steps, limit = workflow.total_steps(), ctx.config.workflow_max_steps
    if steps > limit:
        problem = f"{workflow.source}: {steps} steps exceed the limit of {limit} (WORKFLOW_MAX_STEPS)"
        raise ApiError(400, "WorkflowValidationError", INVALID_PREFIX + problem, workflow_name=name,
                       problems=[problem])
    return workflow


def check_webhook_url(ctx: ApiContext, url: str | None) -> None:
    if url is None:
        return
    try:
        check_url(url, allow_private=ctx.config.webhook_allow_private_networks)
    except UnsafeURLError as exc:
        raise ApiError(400, "InvalidWebhookURL", str(exc)) from None


def create_and_enqueue(ctx: ApiContext, body: dict, workflow: Workflow, idempotency: IdempotencyKey | None = None,
                       *, extra: dict | None = None, reuse: dict[str, dict] | None = None) -> dict:
    """Store the job as queued and publish it: in one call where the queue allows (``JobQueue.pending_push``),
    else one after the other, and if publishing fails the record is removed again, so a 503 leaves nothing behind (the store write itself is all-or-nothing, and an idempotency key naming a removed job is free
    again). Raises IdempotencyKeyTaken when the key already names a job. Each job keeps its steps' fingerprints,
    so a later re-run can tell whether recorded outputs still match; ``reuse`` (a re-run's records) is written
    before the job is published, ``extra`` adds record fields."""
    job_id = str(uuid.uuid4())
    fingerprints = step_fingerprints(workflow, ctx.services.engine.prompts)
    # Published by the create call itself where the broker is the store's Redis; a re-run's reused records must be
    # written before any worker can see the job, so re-runs publish afterwards.
    message = None if reuse else ctx.queue.pending_push(job_id, priority=body["priority"])
    record = ctx.store.create({
        "job_id": job_id, "workflow_name": body["workflow_name"], "workflow_version": workflow.version,
        "priority": body["priority"], "user_id": body["user_id"], "username": body["username"],
        "action": body["action"], "input_data": body["input_data"], "webhook_url": body["webhook_url"],
        "webhook_secret": body["webhook_secret"], "debug_mode": body["debug_mode"],
        "step_fingerprints": fingerprints, "definition_hash": definition_hash(fingerprints), **(extra or {}),
    }, idempotency=idempotency, message=message)
    if message is not None:
        return record
    try:
        ctx.store.set_reused_records(job_id, reuse or {})
        ctx.queue.enqueue(job_id, priority=body["priority"])
    except Exception:
        try:
            ctx.store.delete([job_id])
        except StoreUnavailable:
            log.error("job %s could not be published and its record could not be removed", job_id,
                      extra={"job_id": job_id})
        raise
    return record


@bp.post("/workflow")
@endpoint(
    summary="Submit a workflow job",
    description="Queues a job for the named workflow. Order of checks: API secret, body, webhook URL, "
                "submission rate limit, workflow definition. The job id is also the Celery task id.",
    tag="workflows", body=SubmitRequestSchema, body_example=_SUBMIT_EXAMPLE,
    header_params={IDEMPOTENCY_HEADER: HEADER_PARAMETER},
    replies=[Reply(202, "Job queued", SubmitResponseSchema, {
        "job_id": EXAMPLE_JOB_ID, "celery_task_id": EXAMPLE_JOB_ID, "status": "queued",
        "created_at": EXAMPLE_TIME, "estimated_wait_seconds": None,
        "status_url": f"/api/v1/status/{EXAMPLE_JOB_ID}"}),
        Reply(200, "Replay: the job an earlier request with this Idempotency-Key and body created (its current "
                   "status)", SubmitResponseSchema, {
            "job_id": EXAMPLE_JOB_ID, "celery_task_id": EXAMPLE_JOB_ID, "status": "processing",
            "created_at": EXAMPLE_TIME, "estimated_wait_seconds": None,
            "status_url": f"/api/v1/status/{EXAMPLE_JOB_ID}"},
            headers={REPLAYED_HEADER: REPLAYED_DESCRIPTION})],
    failures=[
        Failure(400, "InvalidWebhookURL", "The webhook URL points at a refused address",
                {"message": "webhook_url host 127.0.0.1 is a loopback address; private, loopback, link-local and "
                            "reserved addresses are not allowed (set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to "
                            "permit them)"}),
        _INVALID_DEFINITION,
        _NO_DEFINITION,
        Failure(429, "RateLimitExceeded", "Too many submissions with this API key (SUBMIT_RATE_LIMIT)",
                {"message": "Too many job submissions with this API key: the limit is 10 per 60 seconds. "
                            "Retry after 12 seconds.", "retry_after": 12}),
        _UNREADABLE_DEFINITION,
        Failure(422, "IdempotencyKeyReused", "The Idempotency-Key was used before with a different body",
                {"message": f"This Idempotency-Key was already used with a different request body (job "
                            f"{EXAMPLE_JOB_ID}); use a new key for a new request, or resend the original body to "
                            "get its job.", "job_id": EXAMPLE_JOB_ID}),
        QUEUE_DOWN,
    ])
def submit_workflow(body: dict) -> Response:
    ctx = api_context()
    check_webhook_url(ctx, body["webhook_url"])
    secret = presented_secret()
    idempotency = requested_key(secret, body, ctx.config.idempotency_ttl_seconds)
    earlier = ctx.store.idempotent_job(idempotency) if idempotency else None
    if earlier is not None:  # answered before the submission limit: a retry must not cost a submission
        return _replay(ctx, earlier)
    limiter = ctx.submit_limiter
    if limiter is not None:
        limiter.acquire(secret)
    job_id = None
    try:
        workflow = load_for_submit(ctx, body["workflow_name"])
        record = create_and_enqueue(ctx, body, workflow, idempotency)
        job_id = record["job_id"]
    except IdempotencyKeyTaken as taken:  # a concurrent request with the same key won the race
        return _replay(ctx, taken)
    finally:
        if limiter is not None and job_id is None:
            limiter.release(secret)
    event(log, "job.submitted", job_id=job_id, workflow_name=body["workflow_name"], priority=body["priority"],
          user_id=body["user_id"], api_key_id=api_key_id(secret), webhook=body["webhook_url"] is not None)
    return _submitted(record, 202)


def _replay(ctx: ApiContext, earlier: IdempotencyKeyTaken) -> Response:
    """The 202's body for the earlier request's job (with its current status), or 422 for a different body."""
    if not earlier.same_request:
        raise key_reused(earlier.job_id)
    record = ctx.store.get(earlier.job_id) or {"job_id": earlier.job_id, "status": "queued", "created_at": None}
    return _submitted(record, 200, {REPLAYED_HEADER: "true"})


def _submitted(record: dict, code: int, headers: dict[str, str] | None = None) -> Response:
    """The submit answer for a job record (new: 202; an Idempotency-Key replay: 200 with its current status)."""
    job_id = record["job_id"]
    status_url = f"/api/v1/status/{job_id}"
    return respond(SubmitResponseSchema, {
        "job_id": job_id, "celery_task_id": job_id, "status": record["status"], "created_at": record["created_at"],
        "estimated_wait_seconds": None, "status_url": status_url}, code,
        headers={"Location": status_url, **(headers or {})})


@bp.post("/workflow/validate")
@endpoint(
    summary="Validate a workflow (dry run)",
    description="Loads the definition and runs the static checks (references, prompt files and includes, "
                "services, providers, step limit). Always 200: problems are reported in `errors` with "
                "`valid: false`. Estimates are placeholders: 1000 tokens, $0.015 and 5 s per step.",
    tag="workflows", body=ValidateRequestSchema,
    body_example={"workflow_name": "emergency_contacts", "input_data": {"formData": {"city": "Seattle"}}},
    replies=[Reply(200, "Validation report", ValidateResponseSchema, {
        "valid": True, "workflow_name": "emergency_contacts", "errors": None, "warnings": [],
        "estimated_tokens": 7000, "estimated_cost_usd": 0.105, "estimated_duration_seconds": 35})])
def validate_workflow(body: dict) -> Response:
    ctx = api_context()
    inspection = inspect_workflow(ctx.services.engine, body["workflow_name"],
                                  max_steps=ctx.config.workflow_max_steps, input_data=body["input_data"])
    return respond(ValidateResponseSchema, {
        "valid": inspection.valid, "workflow_name": body["workflow_name"], "errors": inspection.errors or None,
        "warnings": inspection.warnings, **inspection.estimates()})


@bp.get("/workflows")
@endpoint(
    summary="List the available workflows",
    description="Every definition in the workflows directory, with its version, step count and whether it "
                "passes validation (`errors` lists the problems when it does not).",
    tag="workflows",
    replies=[Reply(200, "The workflows", WorkflowListSchema, {"workflows": [
        {"name": "emergency_contacts", "version": "2.0.0", "description": "Emergency contacts for a location",
         "steps": 7, "valid": True}]})])
def list_workflows() -> Response:
    ctx = api_context()
    engine = ctx.services.engine
    summaries = []
    for name in engine.definitions.names():
        inspection = inspect_workflow(engine, name, max_steps=ctx.config.workflow_max_steps)
        workflow = inspection.workflow
        summary = {"name": name, "version": workflow.version if workflow else None,
                   "description": workflow.description if workflow else None, "steps": inspection.steps,
                   "valid": inspection.valid}
        if not inspection.valid:
            summary["errors"] = inspection.errors
        summaries.append(summary)
    return respond(WorkflowListSchema, {"workflows": summaries})


_EXAMPLE_DIAGRAM = ("%% hello 1.0.0: generated by llm-service diagram\nflowchart TD\n    start((\"input\"))\n"
                    "    finish((\"output\"))\n    s0_greet([\"greet<br/>llm: openai/gpt-4o-mini\"])\n"
                    "    start --> s0_greet\n    s0_greet --> finish\n")


@bp.get("/workflows/<name>")
@endpoint(
    summary="Describe a workflow",
    description="The definition summary for admin pages: input variables, the steps in execution order (children "
                "nested) with what each reads and makes available, the dependency waves, upstream calls per "
                "service, and a flowchart (Mermaid by default, `?format=dot` for Graphviz) drawn from the "
                "definition. Nothing is run.",
    tag="workflows", path_params={"name": "The workflow name (letters, digits, '-' and '_')."},
    query=WorkflowDiagramQuerySchema,
    failures=[
        _INVALID_DEFINITION,
        _NO_DEFINITION,
        _UNREADABLE_DEFINITION],
    replies=[Reply(200, "The workflow", WorkflowDetailSchema, {
        "name": "hello", "version": "1.0.0", "description": "One small LLM call.", "execution": "sequential",
        "timeout_seconds": 60, "default_error_mode": "fail", "total_steps": 1,
        "inputs": [{"name": "name", "type": "string", "required": False, "default": "world",
                    "description": "Who to greet", "declared": True}],
        "steps": [{"id": "greet", "type": "llm", "summary": "openai/gpt-4o-mini", "error_mode": "fail",
                   "branch": None, "references": ["input.name"], "needs": [], "reads_all_earlier": False,
                   "provides": ["steps.greet.output", "steps.greet.content"], "children": []}],
        "waves": None, "upstream_calls": {"openrouter": {"calls": 1, "max_calls": 1}},
        "diagram": {"format": "mermaid", "text": _EXAMPLE_DIAGRAM}})])
def describe_workflow(name: str, query: dict) -> Response:
    ctx = api_context()
    plan = build_plan(load_for_submit(ctx, name), providers=ctx.services.engine.tools.providers)
    described = plan.to_dict()
    return respond(WorkflowDetailSchema, {
        **described["workflow"], "inputs": described["inputs"], "steps": described["steps"],
        "waves": described["waves"], "upstream_calls": described["upstream_calls"],
        "diagram": {"format": query["format"], "text": render_diagram(plan, query["format"])}})
