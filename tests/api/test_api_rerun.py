"""POST /api/v1/jobs/<id>/rerun end to end on real Redis: the API queues the re-run and a worker runtime executes
both jobs with a fake upstream, so upstream call counts show which steps ran again. Covers the default and an
explicit from_step, a changed definition, missing records, jobs still running, and the new job's webhook."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_service.config import Config
from llm_service.engine.errors import UpstreamServerError
from llm_service.http import HttpClient
from llm_service.jobs import JobStore
from llm_service.services import Services
from llm_service.tasks.runtime import WorkerRuntime
from tests.api.support import AUTH, SECRET
from tests.engine.fakes import FakeProvider, FakeService, api_step, make_engine, step, write_workflow

HOOK = "https://hooks.example.test/done"
PIPELINE = {"name": "pipeline", "version": "1", "steps": [
    step("ask", "llm", {"prompt_text": "Name a city near ${input.x}"}, outputs=["city"]),
    api_step("look", params={"city": "${steps.ask.city}"}),
    api_step("final", "flaky", params={"city": "${steps.look.data.city}"}),
]}


class Harness:
    def __init__(self, root: Path, redis_client, prefix: str, queue) -> None:
        self.root, self.queue, self.failing = root, queue, True
        write_workflow(root, PIPELINE)
        self.service = FakeService("fake", echo=lambda p, **_: dict(p), flaky=self._flaky)
        self.provider = FakeProvider("Paris")
        engine = make_engine(root, self.service, provider=self.provider)
        config = Config(api_secret=SECRET, redis_key_prefix=prefix, workflows_dir=str(root),
                        webhook_allow_private_networks=True)
        self.http = HttpClient(pool_size=2, user_agent="test", allow_private_networks=True)
        services = Services(config=config, http=self.http, redis=redis_client, engine=engine,
                            extras={"store": JobStore(redis_client, prefix=prefix)})
        from llm_service.api import create_app

        self.client = create_app(config, services=services, queue=queue).test_client()
        self.runtime = WorkerRuntime(config, services=services, queue=queue)
        self.store = services.store

    def _flaky(self, params, **_):
        if self.failing:
            raise UpstreamServerError("Server error (500): down")
        return {"done": params["city"]}

    def run(self, job_id: str) -> dict:
        self.runtime.run_job(job_id)
        return self.store.get(job_id)

    def submit_and_run(self) -> str:
        response = self.client.post("/api/v1/workflow", headers=AUTH, json={
            "workflow_name": "pipeline", "input_data": {"x": 1}, "webhook_url": HOOK})
        job_id = response.get_json()["job_id"]
        self.run(job_id)
        return job_id

    def rerun(self, job_id: str, body: dict | None = None):
        if body is None:
            return self.client.post(f"/api/v1/jobs/{job_id}/rerun", headers=AUTH)
        return self.client.post(f"/api/v1/jobs/{job_id}/rerun", headers=AUTH, json=body)

    def calls(self) -> list[str]:
        return [f"llm:{len(self.provider.requests)}"] + [op for op, _, _ in self.service.calls]


@pytest.fixture
def harness(tmp_path, redis_client, redis_prefix, recording_queue):
    h = Harness(tmp_path, redis_client, redis_prefix, recording_queue)
    yield h
    h.http.close()


def test_a_failed_job_reruns_from_its_failed_step_reusing_the_rest(harness, recording_queue):
    failed = harness.submit_and_run()
    assert harness.store.get(failed)["status"] == "failed"
    assert harness.calls() == ["llm:1", "echo", "flaky"]
    harness.failing = False

    response = harness.rerun(failed)
    assert response.status_code == 202
    body = response.get_json()
    assert body["rerun_of"] == failed and body["from_step"] == "final" and body["reused_steps"] == ["ask", "look"]
    record = harness.run(body["job_id"])
    assert record["status"] == "completed" and record["rerun_of"] == failed
    assert harness.calls() == ["llm:1", "echo", "flaky", "flaky"]  # only the failed step called upstream again
    result = record["result"]
    assert result["output"]["data"] == {"done": "Paris"}
    assert [e["step_id"] for e in result["steps_executed"] if e.get("reused")] == ["ask", "look"]
    assert record["total_tokens"] == 0  # nothing paid again
    assert (body["job_id"], "workflow.completed", 1) in recording_queue.webhooks  # the new job's webhook

    status = harness.client.get(f"/api/v1/status/{body['job_id']}", headers=AUTH).get_json()
    listed = harness.client.get("/api/v1/jobs?status=all", headers=AUTH).get_json()["jobs"]
    assert status["rerun_of"] == failed
    assert {job["job_id"]: job["rerun_of"] for job in listed} == {failed: None, body["job_id"]: failed}


def test_an_explicit_step_reruns_from_there_and_a_completed_job_needs_one(harness):
    harness.failing = False
    done = harness.submit_and_run()
    refused = harness.rerun(done)
    assert refused.status_code == 422 and refused.get_json()["detail"]["error"] == "FromStepRequired"
    response = harness.rerun(done, {"from_step": "look", "input_data": {"x": 2}})
    assert response.status_code == 202 and response.get_json()["reused_steps"] == ["ask"]
    before = harness.calls()
    assert harness.run(response.get_json()["job_id"])["input_data"] == {"x": 2}
    assert harness.calls()[1:] == before[1:] + ["echo", "flaky"] and harness.calls()[0] == before[0]


def test_a_changed_step_definition_is_refused(harness):
    failed = harness.submit_and_run()
    changed = json.loads(json.dumps(PIPELINE))
    changed["steps"][1]["config"]["parameters"]["country"] = "FR"
    write_workflow(harness.root, changed)
    response = harness.rerun(failed)
    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert detail["error"] == "DefinitionChanged" and detail["changed_steps"] == ["look"]
    assert harness.rerun(failed, {"from_step": "look"}).status_code == 202  # reusing only "ask" is still sound


def test_missing_records_unknown_steps_and_unfinished_jobs_are_refused(harness, redis_client, redis_prefix):
    failed = harness.submit_and_run()
    redis_client.hdel(f"{redis_prefix}:job:{failed}:records", "look")
    missing = harness.rerun(failed, {"from_step": "final"})
    assert missing.status_code == 422 and missing.get_json()["detail"]["missing_steps"] == ["look"]
    assert harness.rerun(failed).get_json()["from_step"] == "look"  # the default: the first step without a record
    unknown = harness.rerun(failed, {"from_step": "nope"})
    assert unknown.status_code == 422 and unknown.get_json()["detail"]["error"] == "UnknownStep"
    queued = harness.client.post("/api/v1/workflow", headers=AUTH, json={
        "workflow_name": "pipeline", "input_data": {"x": 1}}).get_json()["job_id"]
    busy = harness.rerun(queued)
    assert busy.status_code == 409 and busy.get_json()["detail"]["error"] == "JobNotFinished"
    assert harness.client.post("/api/v1/jobs/00000000-0000-0000-0000-000000000000/rerun",
                               headers=AUTH).status_code == 404
