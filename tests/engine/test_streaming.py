"""``"stream": true`` LLM steps: text reaches the run's listener as it arrives, the step's result equals the
non-streamed one, a cancellation stops the stream, under eventlet, gevent and plain threads (each in a fresh
interpreter: monkey-patching cannot be undone)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.fakes import FakeProvider, make_engine, step, write_workflow

HERE = Path(__file__).parent


@pytest.mark.parametrize("mode", ["eventlet", "gevent", "threads"])
def test_streamed_llm_step_under_each_pool(mode):
    if mode != "threads" and importlib.util.find_spec(mode) is None:
        pytest.skip(f"{mode} is not installed")
    done = subprocess.run([sys.executable, str(HERE / "streaming_probe.py"), mode], capture_output=True,
                          text=True, timeout=120, cwd=HERE)
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["green"] is (mode != "threads") and verdict["ok"]
    assert verdict["pieces"] > 5 and verdict["joined"] and verdict["same"]
    assert verdict["cancelled"] and verdict["cancel_seconds"] < 10  # the dripped answer takes over 30 s
    assert verdict["stream_flags"] == [True, False, True]


def test_without_a_token_listener_the_step_is_not_streamed(tmp_path):
    provider = FakeProvider(lambda r: "whole")
    provider.stream = lambda *a, **k: pytest.fail("streamed although nobody listens")
    name = write_workflow(tmp_path, {"name": "s", "steps": [
        step("ask", "llm", {"prompt_text": "hi", "stream": True})]})
    finished = []
    result = make_engine(tmp_path, provider=provider).run(name, {}, progress=lambda *args: finished.append(args))
    assert result["success"] and result["output"]["content"] == "whole" and len(finished) == 1
