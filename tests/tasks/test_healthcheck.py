"""``python -m llm_service.tasks.healthcheck``, the worker container's healthcheck: healthy only while a worker on
this host has a live heartbeat."""
from __future__ import annotations

import socket

from llm_service.jobs.presence import WorkerPresence
from llm_service.tasks.healthcheck import main


def test_healthy_only_with_a_live_heartbeat_from_this_host(monkeypatch, redis_client, redis_prefix, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("REDIS_KEY_PREFIX", redis_prefix)
    presence = WorkerPresence(redis_prefix)
    assert main() == 1
    presence.publish(redis_client, "elsewhere:1:aa", {"hostname": "another-container", "running": 0}, 30)
    assert main() == 1 and "no live worker heartbeat" in capsys.readouterr().err
    presence.publish(redis_client, "here:1:bb", {"hostname": socket.gethostname(), "running": 2}, 30)
    assert main() == 0 and "2 job(s) running" in capsys.readouterr().out
    presence.withdraw(redis_client, "here:1:bb")
    assert main() == 1


def test_unhealthy_when_redis_does_not_answer(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/15")
    assert main() == 1 and "Redis did not answer" in capsys.readouterr().err
