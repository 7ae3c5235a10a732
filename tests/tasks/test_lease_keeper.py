"""A worker whose event loop is busy keeps its leases: a job's lease key never lapses while the only green thread
of an eventlet/gevent worker hogs the CPU for longer than the lease, so no sweeper could take the live job. The
same probe without the lease keeper's OS thread shows the lease lapsing (the check can fail)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_service.jobs import JobStore

PROBE = Path(__file__).with_name("busy_loop_probe.py")
ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/15"


def lease_lapsed_while_hogging(redis_client, prefix: str, pool: str, mode: str) -> bool:
    store = JobStore(redis_client, prefix=prefix)
    job_id = store.create({"workflow_name": "busy"})["job_id"]
    lease = f"{prefix}:job:{job_id}:lease"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    probe = subprocess.Popen([sys.executable, str(PROBE), pool, REDIS_URL, prefix, job_id, mode], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert probe.stdout.readline().strip() == "hogging", probe.stderr.read()[-2000:]
        lapsed = False
        while probe.poll() is None:
            if not redis_client.exists(lease):
                lapsed = True
                probe.kill()  # seen: no need to wait for the hog to end
                break
            time.sleep(0.02)
        out, err = probe.communicate(timeout=30)
        assert lapsed or out.strip() == "done", err[-2000:]
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    assert store.get(job_id)["status"] == "processing"
    return lapsed


@pytest.mark.parametrize("pool", ["eventlet", "gevent"])
def test_a_busy_event_loop_still_renews_its_leases(redis_client, redis_prefix, pool):
    pytest.importorskip(pool)
    assert not lease_lapsed_while_hogging(redis_client, redis_prefix, pool, "keeper")


def test_without_the_lease_keeper_a_busy_event_loop_loses_its_lease(redis_client, redis_prefix):
    pytest.importorskip("eventlet")
    assert lease_lapsed_while_hogging(redis_client, redis_prefix, "eventlet", "no-keeper")
