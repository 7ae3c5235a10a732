"""What the client application reads from each endpoint (``shared/reference/client-contract.md``), written down
from its TypeScript types and route code: for every call the app makes, each key it reads is present with the type
it declares. Optional keys (``?`` in the app's types) may be absent or null (the old service sent nulls); present
values must have the declared type.

The service runs in one process over real Redis with the sandbox upstream, and the bundled emergency_contacts job
really runs (so ``output.contacts`` and ``meeting_locations`` are the workflow's own)."""
from __future__ import annotations

import json
import uuid

from tests.support import REPO

STR, NUM, OBJ, LIST, BOOL = str, (int, float), dict, list, bool


def check(body: dict, required: dict, optional: dict | None = None, where: str = "") -> None:
    for key, kind in required.items():
        assert key in body, f"{where}: the app reads '{key}', which is missing: {sorted(body)}"
        assert isinstance(body[key], kind) and not isinstance(body[key], bool) or kind is BOOL, \
            f"{where}: '{key}' should be {kind}, got {body[key]!r}"
    for key, kind in (optional or {}).items():
        if body.get(key) is not None:
            assert isinstance(body[key], kind), f"{where}: optional '{key}' should be {kind}, got {body[key]!r}"


SUBMIT = {"job_id": STR, "status": STR, "created_at": STR}
JOB = {"job_id": STR, "workflow_name": STR, "status": STR, "created_at": STR}
JOB_OPTIONAL = {"current_step_id": STR, "current_step_name": STR, "progress_percentage": NUM, "started_at": STR,
                "completed_at": STR, "error_message": STR, "error_details": OBJ, "output": OBJ, "metadata": OBJ}
STATUS = {"status": STR}
STATUS_OPTIONAL = {"current_step": STR, "steps_completed": NUM, "total_steps": NUM, "error_message": STR,
                   "result": OBJ}
WEBHOOK = {"event": STR, "job_id": STR, "workflow_name": STR, "status": STR, "result": OBJ, "cost_data": OBJ}
# the old completed payload carries the engine result: the app reads result.output / result.metadata
WEBHOOK_RESULT = {"output": OBJ, "metadata": OBJ}


def _submit_body(**extra) -> dict:
    example = json.loads((REPO / "workflows" / "examples" / "emergency_contacts.json").read_text())
    return {"workflow_name": "emergency_contacts", "input_data": example, "user_id": str(uuid.uuid4()),
            "priority": 5, "username": "admin", "action": "generate_plan", **extra}


def test_every_endpoint_the_app_calls_answers_what_it_reads(make_stack, sandbox):
    bundled = REPO / "workflows"
    prompts = {str(path.relative_to(bundled / "prompts")): path.read_text()
               for path in (bundled / "prompts").rglob("*.md")}
    stack = make_stack([json.loads((bundled / "definitions" / "emergency_contacts.json").read_text())], prompts)
    sandbox.configure(webhook_secret=stack.config.webhook_secret)

    response = stack.post("/api/v1/workflow", json=_submit_body(webhook_url=sandbox.webhook_url("app")))
    assert response.status_code == 202
    submitted = response.get_json()
    check(submitted, SUBMIT, where="POST /api/v1/workflow")
    job_id = submitted["job_id"]

    queued = stack.get(f"/api/v1/jobs/{job_id}").get_json()
    check(queued, JOB, JOB_OPTIONAL, where="GET /api/v1/jobs/{id} (queued)")
    assert queued["progress_percentage"] == 0

    assert stack.run(job_id)["status"] == "completed"
    done = stack.get(f"/api/v1/jobs/{job_id}").get_json()
    check(done, JOB, JOB_OPTIONAL, where="GET /api/v1/jobs/{id} (completed)")
    assert done["progress_percentage"] == 100
    assert done["output"]["contacts"] and "meeting_locations" in done["output"]
    assert isinstance(done["current_step_name"], str) and isinstance(done["metadata"]["total_cost_usd"], float)

    status = stack.get(f"/api/v1/status/{job_id}").get_json()
    check(status, STATUS, STATUS_OPTIONAL, where="GET /api/v1/status/{id}")
    assert status["result"]["output"]["contacts"]

    stack.deliver_pending_webhooks()
    delivery = next(d for d in sandbox.webhooks() if d["json"]["job_id"] == job_id)
    check(delivery["json"], WEBHOOK, where="webhook")
    check(delivery["json"]["result"], WEBHOOK_RESULT, where="webhook result")
    assert delivery["signature_valid"] and delivery["json"]["result"]["output"]["contacts"]

    missing = stack.get(f"/api/v1/jobs/{uuid.uuid4()}")
    assert missing.status_code == 404  # the app shows "Job not found"
    check(missing.get_json(), {"error": STR, "message": STR, "detail": OBJ}, where="404")

    unknown = stack.post("/api/v1/workflow", json=_submit_body(workflow_name="no_such_workflow"))
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "WorkflowNotFound"

    queued_again = stack.post("/api/v1/workflow", json=_submit_body()).get_json()["job_id"]
    deleted = stack.client.delete("/api/v1/jobs/bulk", json={"job_ids": [queued_again]},
                                  headers=stack.auth).get_json()
    check(deleted, {"deleted_count": NUM, "job_ids": LIST}, where="DELETE /api/v1/jobs/bulk")
    assert deleted["job_ids"] == [queued_again] and all(isinstance(j, str) for j in deleted["job_ids"])

    health = stack.client.get("/health").get_json()
    check(health, {"status": STR, "services": OBJ}, where="GET /health")
    for component in ("redis", "celery", "database"):  # one admin component reads database without a guard
        check(health["services"][component], {"status": STR}, where=f"GET /health services.{component}")
