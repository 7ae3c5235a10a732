"""``GET /api/v1/jobs/<id>/events``: replay, ``Last-Event-ID`` resume, following a live job with keep-alives, the
terminal event with the status summary, and the usual errors. Events are written through the job store exactly as
the worker writes them."""
from __future__ import annotations

import json
import uuid

from llm_service.sse import parse_sse
from tests.api.support import SECRET

STEPS = [(1, "step.started", {"step_id": "a", "name": "A", "index": 1, "total": 2}),
         (2, "step.completed", {"step_id": "a", "name": "A", "index": 1, "total": 2, "status": "completed"}),
         (3, "llm.token", {"step_id": "b", "delta": "Hel"}),
         (4, "llm.token", {"step_id": "b", "delta": "lo"})]


def _run_job(store, events, *, status: str = "completed") -> str:
    job_id = store.create({"workflow_name": "greeting"})["job_id"]
    token = store.claim(job_id, worker_id="w", lease_seconds=30).token
    store.save_progress_batch(job_id, token, [({"steps_completed": 1, "total_steps": 2}, None)], events=events[:2])
    store.finish(job_id, token, status=status, result={"success": status == "completed", "output": {"x": 1}},
                 error=None, error_message=None, events=events[2:])
    return job_id


def _events(text: str) -> list[dict]:
    return [item for item in parse_sse(text) if item.get("event")]


def test_a_finished_job_replays_every_event_in_order_then_closes_with_the_status_summary(api):
    job_id = _run_job(api.store, STEPS)
    response = api.get(f"/api/v1/jobs/{job_id}/events")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = _events(response.get_data(as_text=True))
    assert [e["event"] for e in events] == ["step.started", "step.completed", "llm.token", "llm.token",
                                            "job.completed"]
    ids = [tuple(map(int, e["id"].split("-"))) for e in events]
    assert ids == sorted(set(ids))
    terminal = events[-1]["data"]
    assert terminal["status"] == "completed" and terminal["job_id"] == job_id
    assert terminal["result"]["output"] == {"x": 1}
    assert terminal == {**json.loads(api.get(f"/api/v1/status/{job_id}").data), "status": "completed"}


def test_last_event_id_resumes_after_that_event(api):
    job_id = _run_job(api.store, STEPS, status="failed")
    first = _events(api.get(f"/api/v1/jobs/{job_id}/events").get_data(as_text=True))
    resumed = _events(api.get(f"/api/v1/jobs/{job_id}/events",
                              headers={"Last-Event-ID": first[1]["id"]}).get_data(as_text=True))
    assert [e["id"] for e in resumed] == [e["id"] for e in first[2:]]
    assert resumed[-1]["event"] == "job.failed"


def test_a_live_stream_sends_keep_alives_and_closes_after_a_cancel(make_api):
    api = make_api(events_keepalive_seconds=0.05)
    job_id = api.store.create({"workflow_name": "greeting"})["job_id"]
    response = api.get(f"/api/v1/jobs/{job_id}/events")
    chunks, keepalives = [], 0
    for chunk in response.response:
        chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        if chunks[-1].startswith(": keep-alive"):
            keepalives += 1
            if keepalives == 2:
                assert api.store.cancel(job_id) == "cancelled"
    events = _events("".join(chunks))
    assert keepalives == 2
    assert [e["event"] for e in events] == ["job.cancelled"] and events[0]["data"]["status"] == "cancelled"


def test_a_deleted_job_closes_its_stream(make_api):
    api = make_api(events_keepalive_seconds=0.05)
    job_id = api.store.create({"workflow_name": "greeting"})["job_id"]
    response = api.get(f"/api/v1/jobs/{job_id}/events")
    chunks = []
    for chunk in response.response:
        chunks.append(chunk)
        if len(chunks) == 2:
            api.store.delete([job_id])
    assert not _events(b"".join(chunks).decode())
    assert not api.services.redis.exists(f"{api.config.redis_key_prefix}:job:{job_id}:events")


def test_unknown_job_bad_ids_and_missing_secret(api):
    unknown = str(uuid.uuid4())
    missing = api.get(f"/api/v1/jobs/{unknown}/events")
    assert missing.status_code == 404 and missing.json["detail"]["error"] == "JobNotFound"
    assert api.get("/api/v1/jobs/nope/events").json["detail"]["error"] == "InvalidJobID"
    job_id = _run_job(api.store, STEPS)
    bad = api.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "zzz"})
    assert bad.status_code == 400 and bad.json["detail"]["error"] == "InvalidLastEventID"
    assert api.client.get(f"/api/v1/jobs/{job_id}/events").status_code == 401
    assert api.client.get(f"/api/v1/jobs/{job_id}/events",
                          headers={"X-API-Secret": SECRET}).status_code == 200


def test_the_endpoint_is_in_the_openapi_document(api):
    operation = api.get("/openapi.json").json["paths"]["/api/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "404" in operation["responses"]
