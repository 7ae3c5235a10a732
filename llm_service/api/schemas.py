"""Marshmallow schemas of every request body, query string and response body.

Requests are loaded through them (unknown keys ignored, as the old API did), responses are dumped through them, and
``openapi.py`` renders them into the OpenAPI document: one definition for validation, serialisation and docs.
"""
from __future__ import annotations

import uuid
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate

from ..engine.definitions import WholeNumber, safe_name
from ..jobs import STATUSES
from .errors import register_type_message
from .urls import MAX_URL_LENGTH, InvalidURL, normalize_http_url

# Letters, digits, "_" and "-", with at least one letter or digit (the same rule as safe_name, for the document).
WORKFLOW_NAME_PATTERN = r"^[\w-]*[^\W_][\w-]*$"
# The documented (conservative) shape of a webhook URL; the server accepts any absolute http(s) URL it can normalise.
# The port alternatives spell 0-65535: a five-digit port above that is a URL the server cannot parse (422).
WEBHOOK_URL_PATTERN = (r"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*"
                       r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
                       r"(/[A-Za-z0-9._~%-]*)*$")
LIMIT_RESULTS_PATTERN = r"^(Today|7 Days|30 Days|[1-9][0-9]?|[1-4][0-9][0-9]|500)$"
WORKFLOW_NAME_MESSAGE = "workflow_name must contain only alphanumeric characters, underscores, and hyphens"
JOB_STATUSES = list(STATUSES)
EXAMPLE_JOB_ID = "3f0c2a9e-8d4b-4f6a-9c1e-2b7d5e8a1c40"
EXAMPLE_USER_ID = "9b2f6c1d-4e8a-4b3c-8f7d-1a2b3c4d5e6f"
EXAMPLE_TIME = "2026-01-15T10:00:00.123Z"


class _Request(Schema):
    class Meta:
        unknown = EXCLUDE  # extra fields are ignored, as the old API ignored them


# --------------------------------------------------------------------------------------------------------------
# Field types


def _workflow_name_chars(value: str) -> None:
    if 0 < len(value) <= 100 and not safe_name(value):
        raise ValidationError(WORKFLOW_NAME_MESSAGE)


def workflow_name_field(**kwargs: Any) -> fields.String:
    return fields.String(
        required=True, validate=[validate.Length(1, 100), _workflow_name_chars],
        metadata={"description": "Name of a workflow definition (letters, digits, `_` and `-`; 1-100 characters).",
                  "example": "emergency_contacts", "pattern": WORKFLOW_NAME_PATTERN}, **kwargs)


class UserId(fields.String):
    """A UUID in any spelling Python's ``uuid.UUID`` accepts, returned canonical; ``""`` means no user."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "":
            return None
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValidationError(f"Must be a UUID such as {EXAMPLE_USER_ID}.") from None


class WebhookURL(fields.String):
    """An absolute http(s) URL with a host, returned in normal form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_http_url(text)
        except InvalidURL as exc:
            raise ValidationError(f"Not a valid http(s) URL: {exc}.") from None


_JSON_OBJECT = register_type_message("Must be a JSON object.")
register_type_message("Must be a whole number.")


def _object_field(**kwargs: Any) -> fields.Dict:
    return fields.Dict(error_messages={"invalid": _JSON_OBJECT}, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Request bodies


class ValidateRequestSchema(_Request):
    workflow_name = workflow_name_field()
    input_data = _object_field(required=True, metadata={
        "description": "The workflow's input (any JSON object).",
        "example": {"formData": {"location": {"lat": 47.6062, "lng": -122.3321}}}})


class SubmitRequestSchema(ValidateRequestSchema):
    webhook_url = WebhookURL(load_default=None, allow_none=True, metadata={
        "description": "Optional. Absolute http(s) URL (at most 2083 characters) that receives the job's terminal "
                       "event. Stored normalised (`https://example.com` becomes `https://example.com/`). "
                       "Addresses that resolve to private, loopback, link-local or reserved networks are refused "
                       "unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is on.",
        "format": "uri", "maxLength": MAX_URL_LENGTH, "pattern": WEBHOOK_URL_PATTERN,
        "example": "https://app.example.com/api/webhooks/llm"})
    webhook_secret = fields.String(load_default=None, allow_none=True, validate=validate.Length(8, 255), metadata={
        "description": "Optional per-job HMAC secret for the webhook signature (default: the service's secret).",
        "example": "whsec-0123456789"})
    user_id = UserId(load_default=None, allow_none=True, metadata={
        "description": "Optional UUID of the user the job is for (empty string = none).", "format": "uuid",
        "example": EXAMPLE_USER_ID})
    priority = WholeNumber(load_default=0, validate=validate.Range(0, 10), metadata={
        "description": "0-10, higher runs sooner.", "example": 5})
    debug_mode = fields.Boolean(load_default=False, metadata={"description": "Stored with the job."})
    username = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255), metadata={
        "description": "Informational.", "example": "jane"})
    action = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255), metadata={
        "description": "Informational: what the user was doing.", "example": "generate_plan"})


class RerunRequestSchema(_Request):
    from_step = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255), metadata={
        "description": "The step to run again from; the steps before it (definition order) reuse their recorded "
                       "outputs. Default: the first step that did not succeed (failed or cancelled jobs; a "
                       "completed job needs it).", "example": "generate_plan"})
    input_data = fields.Dict(load_default=None, allow_none=True, metadata={
        "description": "Optional new input (default: the earlier job's). Reused steps keep their recorded outputs "
                       "whatever the input.", "example": {"formData": {"city": "Seattle"}}})
    webhook_url = WebhookURL(load_default=None, allow_none=True, metadata={
        "description": "Optional webhook for the new job (default: the earlier job's webhook and secret).",
        "format": "uri", "maxLength": MAX_URL_LENGTH, "pattern": WEBHOOK_URL_PATTERN})


class BulkDeleteRequestSchema(_Request):
    job_ids = fields.List(fields.String(metadata={"format": "uuid"}), required=True, metadata={
        "description": "Ids (UUIDs) of the jobs to stop and delete (an empty list is a 400).", "minItems": 1,
        "example": [EXAMPLE_JOB_ID]})


# --------------------------------------------------------------------------------------------------------------
# Query strings


STATUS_FILTERS = ["running", "completed", "failed", "all", "pending", "queued", "processing", "cancelled"]
PERIODS = {"Today": 1, "7 Days": 7, "30 Days": 30}
MAX_OFFSET = 2**31 - 1  # Redis takes offsets as 64-bit integers; anything near that is a client error anyway


class JobListQuerySchema(_Request):
    status = fields.String(metadata={
        "description": "`running` = pending + queued + processing; `all` or empty = any status; or one status.",
        "enum": STATUS_FILTERS})
    user_id = fields.String(metadata={"description": "Only this user's jobs (UUID).",
                                                         "format": "uuid"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200), metadata={
        "description": "Page size, 1-200."})
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_OFFSET), metadata={
        "description": "Jobs to skip (newest first)."})
    limit_results = fields.String(metadata={
        "description": "`Today` (last 24 h), `7 Days`, `30 Days` (rolling windows), or a number 1-500 that "
                       "replaces `limit`.", "example": "7 Days", "pattern": LIMIT_RESULTS_PATTERN})


# --------------------------------------------------------------------------------------------------------------
# Responses


def _nullable_str(**metadata: Any) -> fields.String:
    return fields.String(allow_none=True, metadata=metadata)


def _time(description: str) -> fields.String:
    return fields.String(allow_none=True, metadata={"format": "date-time", "description": description,
                                                    "example": EXAMPLE_TIME})


class RootSchema(Schema):
    service = fields.String(metadata={"example": "LLM Workflow Microservice"})
    version = fields.String(metadata={"example": "1.0.0"})
    status = fields.String(metadata={"example": "online"})
    docs = fields.String(metadata={"example": "/docs"})


class ComponentHealthSchema(Schema):
    status = fields.String(metadata={"enum": ["healthy", "unhealthy", "no_workers", "unavailable"]})
    error = fields.String(metadata={"description": "Short reason when unhealthy."})
    workers = fields.Integer(metadata={"description": "Workers whose heartbeat is live (celery only)."})


class HealthServicesSchema(Schema):
    redis = fields.Nested(ComponentHealthSchema)
    database = fields.Nested(ComponentHealthSchema, metadata={
        "description": "The job store (Redis): the same check as `redis`, under the name older clients read."})
    celery = fields.Nested(ComponentHealthSchema)


class HealthSchema(Schema):
    status = fields.String(metadata={"enum": ["healthy", "degraded", "unhealthy"]})
    services = fields.Nested(HealthServicesSchema)
    version = fields.String()
    timestamp = fields.String(metadata={"format": "date-time"})


class SubmitResponseSchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    celery_task_id = fields.String(metadata={"format": "uuid", "description": "Equal to job_id."})
    status = fields.String(metadata={"example": "queued"})
    created_at = _time("When the job was stored.")
    estimated_wait_seconds = fields.Integer(allow_none=True)
    status_url = fields.String()


class RerunResponseSchema(SubmitResponseSchema):
    rerun_of = fields.String(metadata={"format": "uuid", "description": "The job this one re-runs."})
    from_step = fields.String(metadata={"description": "The first step the new job executes."})
    reused_steps = fields.List(fields.String(), metadata={
        "description": "Steps whose recorded outputs the new job reuses instead of executing them."})


class ValidateResponseSchema(Schema):
    valid = fields.Boolean()
    workflow_name = fields.String()
    errors = fields.List(fields.String(), allow_none=True)
    warnings = fields.List(fields.String(), metadata={"description": "Non-fatal findings (new)."})
    estimated_tokens = fields.Integer(allow_none=True)
    estimated_cost_usd = fields.Float(allow_none=True)
    estimated_duration_seconds = fields.Integer(allow_none=True)


class WorkflowSummarySchema(Schema):
    name = fields.String()
    version = _nullable_str()
    description = _nullable_str()
    steps = fields.Integer(allow_none=True, metadata={"description": "Number of steps (nested ones included)."})
    valid = fields.Boolean()
    errors = fields.List(fields.String(), metadata={"description": "Present only when the definition is invalid."})


class WorkflowInputSchema(Schema):
    name = fields.String()
    type = _nullable_str()
    required = fields.Boolean(allow_none=True)
    default = fields.Raw(allow_none=True)
    description = _nullable_str()
    declared = fields.Boolean(metadata={"description": "False for an `${input.X}` a step reads that the "
                                                       "definition does not declare."})


class PlannedStepSchema(Schema):
    id = fields.String()
    type = fields.String()
    summary = fields.String(metadata={"description": "Model, service.operation, transform or condition."})
    error_mode = fields.String(metadata={"enum": ["fail", "continue", "retry"]})
    branch = _nullable_str(description="`then`/`else` under a conditional, `parallel` under a parallel step.")
    references = fields.List(fields.String(), metadata={"description": "`${...}` paths the step reads."})
    needs = fields.List(fields.String(), metadata={"description": "Steps whose results it reads."})
    reads_all_earlier = fields.Boolean()
    provides = fields.List(fields.String(), metadata={"description": "What later steps can reference."})
    children = fields.List(fields.Nested(lambda: PlannedStepSchema()))


class DiagramSchema(Schema):
    format = fields.String(metadata={"enum": ["mermaid", "dot"]})
    text = fields.String()


class WorkflowDetailSchema(Schema):
    name = fields.String()
    version = fields.String()
    description = _nullable_str()
    execution = fields.String(metadata={"enum": ["sequential", "dependencies"]})
    timeout_seconds = fields.Integer()
    default_error_mode = fields.String()
    total_steps = fields.Integer()
    inputs = fields.List(fields.Nested(WorkflowInputSchema))
    steps = fields.List(fields.Nested(PlannedStepSchema), metadata={"description": "In execution order, "
                                                                                  "children nested."})
    waves = fields.List(fields.List(fields.String()), allow_none=True, metadata={
        "description": "`dependencies` mode: top-level steps that can start together, wave by wave."})
    upstream_calls = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "Per service: `calls` (each step once) and `max_calls` (with retries, fallbacks and "
                       "format retries)."})
    diagram = fields.Nested(DiagramSchema)


class WorkflowDiagramQuerySchema(_Request):
    format = fields.String(load_default="mermaid", validate=validate.OneOf(["mermaid", "dot"]), metadata={
        "description": "Diagram syntax.", "enum": ["mermaid", "dot"]})


class WorkflowListSchema(Schema):
    workflows = fields.List(fields.Nested(WorkflowSummarySchema))


class StatusResponseSchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    status = fields.String(metadata={"enum": JOB_STATUSES})
    workflow_name = fields.String()
    created_at = _time("When the job was submitted.")
    started_at = _time("When execution started.")
    completed_at = _time("When the job reached its final status.")
    duration_ms = fields.Integer(allow_none=True)
    result = fields.Raw(allow_none=True, metadata={
        "description": "The engine result once the job is completed, failed or cancelled."})
    error_message = _nullable_str()
    current_step = _nullable_str(description="While processing: the step that finished last.")
    steps_completed = fields.Integer(allow_none=True)
    total_steps = fields.Integer(allow_none=True)
    webhook_url = _nullable_str()
    error = fields.Dict(allow_none=True, metadata={"description": "Structured error context (new)."})
    rerun_of = _nullable_str(format="uuid", description="The job this one re-runs (POST /jobs/{id}/rerun).")


class JobSummarySchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    workflow_name = fields.String()
    status = fields.String(metadata={"enum": JOB_STATUSES})
    priority = fields.Integer()
    user_id = _nullable_str(format="uuid")
    username = _nullable_str()
    action = _nullable_str()
    created_at = _time("Submission time.")
    started_at = _time("Execution start.")
    completed_at = _time("Final status time.")
    duration_ms = fields.Integer(allow_none=True)
    error_message = _nullable_str()
    rerun_of = _nullable_str(format="uuid", description="The job this one re-runs.")


class JobListSchema(Schema):
    jobs = fields.List(fields.Nested(JobSummarySchema))
    total = fields.Integer(metadata={"description": "All matches before paging."})
    limit = fields.Integer(metadata={"description": "The effective page size."})
    offset = fields.Integer()


class WebhookSummarySchema(Schema):
    state = fields.String(metadata={"enum": ["none", "pending", "delivered", "failed"]})
    attempts = fields.Integer()
    permanently_failed = fields.Boolean()
    next_attempt_at = _time("When the next attempt is due.")


class JobDetailSchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    celery_task_id = fields.String(metadata={"format": "uuid"})
    workflow_name = fields.String()
    workflow_version = _nullable_str()
    status = fields.String(metadata={"enum": JOB_STATUSES})
    priority = fields.Integer()
    user_id = _nullable_str(format="uuid")
    username = _nullable_str()
    action = _nullable_str()
    input_data = fields.Raw()
    webhook_url = _nullable_str()
    debug_mode = fields.Boolean()
    created_at = _time("Submission time.")
    queued_at = _time("When the job was queued.")
    started_at = _time("Execution start.")
    completed_at = _time("Final status time.")
    updated_at = _time("Last change.")
    duration_ms = fields.Integer(allow_none=True)
    result = fields.Raw(allow_none=True)
    error_message = _nullable_str()
    error = fields.Dict(allow_none=True)
    progress = fields.Dict(allow_none=True, metadata={
        "description": "`current_step` (finished last), `current_step_name`, `steps_completed`, `total_steps`, "
                       "`active_step` / `active_step_name` (running now), `last_updated`."})
    current_step_id = _nullable_str(description="The step running now, else the step that finished last.")
    current_step_name = _nullable_str(description="That step's display name (`display_name`/`name`), else its id.")
    progress_percentage = fields.Integer(metadata={"description": "Steps finished out of all steps, 0-100; 100 "
                                                                  "once completed.", "minimum": 0, "maximum": 100})
    output = fields.Raw(allow_none=True, metadata={"description": "`result.output` (for clients that read it "
                                                                  "here)."})
    metadata = fields.Dict(allow_none=True, metadata={"description": "`result.metadata`."})
    error_details = fields.Dict(allow_none=True, metadata={"description": "The structured error (same as "
                                                                          "`error`)."})
    attempts = fields.Integer(metadata={"description": "Executions started."})
    recoveries = fields.Integer(metadata={"description": "Times the job was re-queued after its worker died."})
    cancel_requested = fields.Boolean()
    webhook_event = _nullable_str()
    webhook_state = fields.String()
    webhook_attempts = fields.Integer()
    webhook_next_attempt_at = _time("Next webhook attempt.")
    webhook_permanently_failed = fields.Boolean()
    total_tokens = fields.Integer()
    total_cost_usd = fields.Float()
    steps = fields.List(fields.Dict(), metadata={"description": "One entry per executed step."})
    usage = fields.List(fields.Dict(), metadata={"description": "One record per LLM call."})
    webhook = fields.Nested(WebhookSummarySchema)
    rerun_of = _nullable_str(format="uuid", description="The job this one re-runs.")
    rerun_from_step = _nullable_str(description="The step a re-run started executing from.")
    definition_hash = _nullable_str(description="Hash of the workflow definition the job was submitted with.")


class CancelResponseSchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    status = fields.String(metadata={"enum": ["cancelled", "cancelling"]})
    message = fields.String()


class WebhookAttemptsSchema(Schema):
    job_id = fields.String(metadata={"format": "uuid"})
    webhook_url = _nullable_str()
    state = fields.String(metadata={"enum": ["none", "pending", "delivered", "failed"]})
    permanently_failed = fields.Boolean()
    attempts = fields.List(fields.Dict(), metadata={"description": "Every delivery attempt, oldest first."})


class BulkDeleteResponseSchema(Schema):
    deleted_count = fields.Integer()
    tasks_revoked = fields.Integer(metadata={"description": "Running jobs told to stop."})
    redis_removed = fields.Integer(metadata={"description": "Queued jobs removed before they ran."})
    job_ids = fields.List(fields.String(), metadata={"description": "The ids actually deleted."})
    message = fields.String()


class ValidationIssueSchema(Schema):
    loc = fields.List(fields.Raw(), metadata={"example": ["body", "workflow_name"]})
    msg = fields.String()
    type = fields.String(metadata={"enum": ["missing", "null", "type_error", "value_error"]})


class ErrorDetailSchema(Schema):
    class Meta:
        unknown = INCLUDE  # codes add their own keys (job_id, workflow_name, valid_values, ...)

    error = fields.String(required=True, metadata={"example": "JobNotFound"})
    message = fields.String(required=True)
    errors = fields.List(fields.Nested(ValidationIssueSchema), metadata={"description": "ValidationError only."})
    retry_after = fields.Integer(metadata={"description": "RateLimitExceeded only: seconds to wait."})


class ErrorSchema(Schema):
    detail = fields.Nested(ErrorDetailSchema, required=True)
    error = fields.String(required=True, metadata={"description": "The same code as `detail.error` (for clients "
                                                                   "that read the top level).",
                                                    "example": "JobNotFound"})
    message = fields.String(required=True, metadata={"description": "The same text as `detail.message`."})
