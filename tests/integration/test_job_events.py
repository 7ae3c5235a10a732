"""The job event stream through real processes: a client reads part of a running job's events, the API process is
restarted, and the client resumes with ``Last-Event-ID`` on the new process: nothing lost, nothing repeated, and
the stream closes after the terminal event. The LLM step streams (``"stream": true``), so its text arrives as
``llm.token`` events that add up to the step's final output."""
from __future__ import annotations

import json

import requests

from llm_service.sse import SseParser
from tests.support import REPO

CHAT = "/openai/v1/chat/completions"


def _read(stack, job_id: str, *, after: str | None = None, stop_after: int | None = None) -> list:
    headers = {"Last-Event-ID": after} if after else {}
    with stack.session.get(f"{stack.api_url}/api/v1/jobs/{job_id}/events", headers=headers, stream=True,
                           timeout=30) as response:
        assert response.status_code == 200, response.text
        events = []
        for event in SseParser().events(response.iter_lines(chunk_size=None, decode_unicode=True)):
            if event.event:
                events.append(event)
                if stop_after is not None and len(events) == stop_after:
                    break
        return events


def streaming_workflows(root):
    definition = json.loads((REPO / "workflows" / "definitions" / "emergency_contacts.json").read_text())
    for step in definition["steps"]:
        if step["type"] == "llm":
            step["config"]["stream"] = True
    (root / "definitions").mkdir(parents=True)
    (root / "definitions" / "emergency_contacts.json").write_text(json.dumps(definition))
    (root / "prompts").symlink_to(REPO / "workflows" / "prompts", target_is_directory=True)
    return root


def test_a_stream_resumes_after_an_api_restart_without_losing_or_repeating_events(stack_factory, fresh_sandbox,
                                                                                 tmp_path):
    stack = stack_factory("events", extra_env={"WORKFLOWS_DIR": str(streaming_workflows(tmp_path / "wf"))})
    stack.start_worker("eventlet", 4)
    stack.start_api()
    stack.wait_for_workers()
    fresh_sandbox.add_fault(CHAT, "timeout", delay=3)  # the LLM step answers after 3 s: the job is still running
    job_id = stack.submit(webhook=None)

    first = _read(stack, job_id, stop_after=4)
    stack.kill("api")
    stack.start_api()
    rest = _read(stack, job_id, after=first[-1].id)

    replay = _read(stack, job_id)
    assert [e.id for e in first + rest] == [e.id for e in replay]
    ids = [tuple(map(int, e.id.split("-"))) for e in replay]
    assert ids == sorted(set(ids))
    names = [e.event for e in replay]
    assert names[-1] == "job.completed" and names.count("step.completed") == 8 and names.count("step.started") == 8
    final = replay[-1].json()
    assert final["status"] == "completed" and final["job_id"] == job_id
    tokens = [e.json() for e in replay if e.event == "llm.token"]
    assert tokens and {t["step_id"] for t in tokens} == {"generate_contacts"}
    summary = next(s for s in stack.job(job_id)["steps"] if s["step_id"] == "generate_contacts")["output"]
    streamed = "".join(t["delta"] for t in tokens)
    assert summary["content"].removesuffix("...") and streamed.startswith(summary["content"].removesuffix("..."))
    assert stack.status(job_id)["status"] == "completed"
    missing = requests.get(f"{stack.api_url}/api/v1/jobs/{job_id}/events", timeout=10)
    assert missing.status_code == 401
