"""``llm-service dev`` / ``make demo``: busy ports fail at once in one line, the suggested request file exists, and
shutdown stops the processes one at a time, newest first (the worker before Redis)."""
from __future__ import annotations

import json
import socket
import sys
import time

import pytest

from llm_service import devstack
from llm_service.sandbox.__main__ import main as sandbox_main


@pytest.fixture
def busy_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_a_busy_port_is_named_in_one_line_at_once(busy_port, tmp_path):
    args = devstack.parse_args(["--api-port", str(busy_port), "--state-dir", str(tmp_path)])
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        devstack.Stack(args).run()
    message = str(info.value)
    assert time.monotonic() - started < 5
    assert f"port {busy_port} (API) is already in use" in message and "--api-port" in message
    assert "API_PORT=" in message and "\n" not in message


def test_the_sandbox_names_a_busy_port_instead_of_a_traceback(busy_port):
    with pytest.raises(SystemExit) as info:
        sandbox_main(["--port", str(busy_port)])
    assert f"port {busy_port} is already in use" in str(info.value) and "--port" in str(info.value)


def test_the_suggested_request_is_a_valid_submission_of_the_example(tmp_path):
    body = devstack.submit_body(devstack.parse_args(["--state-dir", str(tmp_path)]), webhook=None)
    example = json.loads((devstack.REPO / "workflows" / "examples" / "emergency_contacts.json").read_text())
    assert body["workflow_name"] == "emergency_contacts" and body["input_data"] == example
    assert "webhook_url" not in body


def test_stop_ends_the_newest_process_before_the_older_ones(tmp_path):
    stack = devstack.Stack(devstack.parse_args(["--state-dir", str(tmp_path)]))
    marker = tmp_path / "order"
    # "redis" records when it is asked to stop; "worker" takes a moment to shut down and records when it is done
    handler = ("import signal, sys, time, pathlib\n"
               "def stop(*_):\n"
               "    time.sleep({delay})\n"
               "    with open({path!r}, 'a') as f: f.write('{name} ')\n"
               "    sys.exit(0)\n"
               "signal.signal(signal.SIGTERM, stop)\n"
               "print('ready', flush=True)\n"
               "time.sleep(60)\n")
    for name, delay in (("redis", 0), ("worker", 0.5)):
        stack.start(name, [sys.executable, "-c", handler.format(delay=delay, path=str(marker), name=name)], {})
    deadline = time.monotonic() + 10
    while any(b"ready" not in (tmp_path / "logs" / f"{n}.log").read_bytes() for n in ("redis", "worker")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stack.stop()
    assert marker.read_text().split() == ["worker", "redis"]
