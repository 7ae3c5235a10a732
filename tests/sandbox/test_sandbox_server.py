from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from llm_service.sandbox import SandboxServer

WEATHER = "/weatherapi/v1/current.json"


def _weather(session, sandbox):
    return session.get(sandbox.url + WEATHER, params={"key": "secret-key-value", "q": "1,2"}, timeout=5)


def test_keep_alive_session_counts_as_one_connection(sandbox):
    with requests.Session() as session:
        _weather(session, sandbox)
        _weather(session, sandbox)

    stats = sandbox.stats()
    assert stats["requests"] == 2
    assert stats["connections_opened"] == 1
    assert [r["connection"] for r in sandbox.requests()][0] == sandbox.requests()[1]["connection"]


def test_two_sessions_count_as_two_connections(sandbox):
    with requests.Session() as first, requests.Session() as second:
        _weather(first, sandbox)
        _weather(second, sandbox)

    assert sandbox.stats()["connections_opened"] == 2


def test_stats_count_by_path_but_not_admin_calls(sandbox, http):
    _weather(http, sandbox)
    http.get(sandbox.url + "/places/textsearch/json", params={"key": "k", "query": "q"})
    http.get(sandbox.url + "/_sandbox/health")
    http.get(sandbox.url + "/_sandbox/stats")

    stats = http.get(sandbox.url + "/_sandbox/stats").json()
    assert stats["requests"] == 2
    assert stats["by_path"] == {WEATHER: 1, "/places/textsearch/json": 1}


def test_reset_clears_counters_logs_and_faults_and_restores_settings(sandbox, http):
    _weather(http, sandbox)
    sandbox.add_fault("/x", "reset")
    sandbox.set_latency(5)

    assert http.post(sandbox.url + "/_sandbox/reset").json() == {"status": "reset"}

    assert sandbox.stats()["requests"] == 0 and sandbox.stats()["connections_opened"] == 0
    assert sandbox.requests() == [] and sandbox.faults() == []
    assert http.get(sandbox.url + "/_sandbox/config").json()["latency_ms"] == 0.0


def test_request_log_redacts_the_key_and_keeps_post_json(sandbox, http):
    _weather(http, sandbox)
    http.post(sandbox.url + "/openai/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "hi"}]}, headers={"Authorization": "Bearer secret-token-value"})

    logged = http.get(sandbox.url + "/_sandbox/requests").json()["requests"]
    assert logged[0]["query"] == {"key": "[REDACTED]", "q": "1,2"}
    assert logged[0]["status"] == 200 and logged[0]["method"] == "GET"
    assert logged[1]["json"]["messages"][0]["content"] == "hi"
    assert "secret-key-value" not in str(logged) and "secret-token-value" not in str(logged)


def test_health_and_unknown_paths_are_labelled_json_with_content_length(sandbox, http):
    health = http.get(sandbox.url + "/_sandbox/health")
    missing = http.get(sandbox.url + "/nope")
    wrong_method = http.get(sandbox.url + "/openai/v1/chat/completions")

    assert health.json() == {"status": "ok", "sandbox": True}
    assert missing.status_code == 404 and wrong_method.status_code == 405
    for response in (health, missing, wrong_method):
        assert response.headers["X-Sandbox"] == "true"
        assert int(response.headers["Content-Length"]) == len(response.content)


def test_bad_admin_config_is_400(sandbox, http):
    for body in ({"latency_ms": -1}, {"webhook_status": 9000}, {"colour": "red"}, ["not", "an", "object"]):
        assert http.post(sandbox.url + "/_sandbox/config", json=body).status_code == 400


def test_chunked_request_bodies_are_read(sandbox, http):
    body = b'{"model": "m", "messages": [{"role": "user", "content": "chunked hello"}]}'

    response = http.post(sandbox.url + "/openai/v1/chat/completions", data=iter([body[:10], body[10:]]),
                         headers={"Authorization": "Bearer k", "Content-Type": "application/json"})

    assert response.status_code == 200
    assert "chunked hello" in response.json()["choices"][0]["message"]["content"]


def test_latency_is_served_concurrently():
    """With a long latency, many requests are in flight at once: the sleep is per request, not serialised."""
    clients = 20
    server = SandboxServer(latency_ms=60_000).start()
    try:
        threads = [threading.Thread(target=_swallow, args=(server,), daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while server.stats()["in_flight"] < clients and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stats()["in_flight"] == clients
    finally:
        server.stop()  # also cuts the simulated latency short
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()


def _swallow(server):
    try:
        requests.get(server.url + WEATHER, params={"key": "k", "q": "1,2"}, timeout=30)
    except requests.RequestException:
        pass


def test_base_urls_point_at_the_fake_apis(sandbox):
    urls = sandbox.base_urls()

    assert set(urls) == {"WEATHERAPI_BASE_URL", "GOOGLE_PLACES_BASE_URL", "OPENROUTER_BASE_URL", "OPENAI_BASE_URL"}
    assert requests.get(urls["WEATHERAPI_BASE_URL"] + "/current.json", params={"key": "k", "q": "1,2"}).ok


def test_stopped_server_refuses_connections():
    server = SandboxServer().start()
    url = server.url
    server.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/_sandbox/health", timeout=2)


def test_cli_prints_banner_and_webhook_lines_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "llm_service.sandbox", "--port", "0", "--webhook-secret", "s"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("===") and len(banner) > 1:
                break
        text = "".join(banner)
        assert "SANDBOX" in text and "FAKE" in text
        url = next(line.split()[-1] for line in banner if "Listening on" in line)
        assert f"GOOGLE_PLACES_BASE_URL={url}/places" in text

        requests.post(url + "/webhooks/demo", json={"event": "workflow.failed", "job_id": "j-9"}, timeout=5)
        line = process.stdout.readline()
        assert line.startswith("[sandbox] webhook received: event=workflow.failed job=j-9 signature=missing")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
