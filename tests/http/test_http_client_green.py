"""The HttpClient's worker threads, budget, cancellation and guard also work under green-thread monkey-patching.

Monkey-patching cannot be undone inside the test process, so each library gets a fresh interpreter.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("green_client_check.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("library", ["eventlet", "gevent"])
def test_client_under_monkey_patching(library):
    pytest.importorskip(library)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(SCRIPT), library], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "timeout", "cancelled", "blocked", "checked"]
