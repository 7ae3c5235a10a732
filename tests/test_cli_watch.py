"""``llm-service watch`` and ``llm-service run --progress``: the same view of the same events, plain lines through a
pipe, the job's outcome as the exit code, and stdout of ``run`` still only the result JSON."""
from __future__ import annotations

import argparse
import io
import json
import threading
import uuid

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from llm_service.cli import main
from llm_service.watch import ProgressView, watch_job
from tests.api.conftest import make_api, prefix, workflows_dir  # noqa: F401 (fixtures)
from tests.api.support import SECRET
from tests.api.test_api_events import STEPS, _run_job
from tests.test_cli import cli_env, sandbox, write  # noqa: F401 (fixtures)


def test_run_progress_shows_steps_and_streamed_text_on_stderr_only(cli_env, tmp_path, capsys):  # noqa: F811
    write(tmp_path, "ask", {"name": "ask", "steps": [
        {"id": "answer", "type": "llm", "display_name": "Answer",
         "config": {"prompt_text": "Say something about rivers", "stream": True}},
        {"id": "shout", "type": "transform", "config": {"operation": "template",
                                                        "config": {"template": "${steps.answer.content}!"}}}]})
    (tmp_path / "in.json").write_text("{}")
    code = main(["run", "ask", "-i", str(tmp_path / "in.json"), "--workflows-dir", str(tmp_path), "--progress"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert code == 0 and result["success"]
    content = result["output"].removesuffix("!")
    assert "--- Answer ---\n" + content + "\n[1/2] ok Answer" in err
    assert "[2/2] ok shout" in err and "\x1b" not in err


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def served(make_api):  # noqa: F811
    api = make_api()
    server = make_server("127.0.0.1", 0, api.app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield api, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize("status, code", [("completed", 0), ("failed", 1), ("cancelled", 3)])
def test_watch_prints_the_job_and_exits_with_its_outcome(served, monkeypatch, status, code):
    api, url = served
    monkeypatch.setenv("LLM_API_SECRET", SECRET)
    job_id = _run_job(api.store, STEPS, status=status)
    out = io.StringIO()
    assert watch_job(argparse.Namespace(job_id=job_id, api_url=url), out=out) == code
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] ok A" and lines[1:3] == ["--- b ---", "Hello"]
    assert lines[-1].startswith({"completed": "job ok", "failed": "job FAILED", "cancelled": "job cancelled"}[status])


def test_watch_of_an_unknown_job_or_with_a_wrong_secret_is_an_error(served, monkeypatch, capsys):
    api, url = served
    monkeypatch.setenv("LLM_API_SECRET", SECRET)
    assert watch_job(argparse.Namespace(job_id=str(uuid.uuid4()), api_url=url), out=io.StringIO()) == 2
    assert "404 Job not found" in capsys.readouterr().err
    monkeypatch.setenv("LLM_API_SECRET", "wrong-secret-0123456789")
    job_id = _run_job(api.store, STEPS)
    assert watch_job(argparse.Namespace(job_id=job_id, api_url=url), out=io.StringIO()) == 2


def test_a_tty_gets_a_status_line_and_colours_a_pipe_none():
    events = [("step.started", {"step_id": "a", "name": "A", "index": 1, "total": 1}),
              ("step.completed", {"step_id": "a", "name": "A", "index": 1, "total": 1, "status": "failed",
                                  "duration_ms": 5, "cached": False}),
              ("job.requeued", {"status": "queued", "recoveries": 1}),
              ("job.failed", {"status": "failed", "error_message": "boom", "duration_ms": 1500})]
    views = {tty: ProgressView(io.StringIO(), tty=tty) for tty in (True, False)}
    for view in views.values():
        for name, data in events:
            view.show(name, data)
    assert views[False].out.getvalue() == ("[1/1] FAILED A 5 ms\n"
                                           "job requeued: its worker stopped; it runs again from the start\n"
                                           "job FAILED in 1.5 s: boom\n")
    shown = views[True].out.getvalue()
    assert "[1/1] A ...\x1b[0m\r\x1b[2K" in shown and "\x1b[31mFAILED\x1b[0m" in shown
