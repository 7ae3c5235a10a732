from __future__ import annotations

import json
import re
import socket

import pytest
import requests

WEATHER = "/weatherapi/v1/current.json"
PARAMS = {"key": "k", "q": "10,20"}


def _get(http, sandbox, path=WEATHER, **kwargs):
    return http.get(sandbox.url + path, params=PARAMS, timeout=5, **kwargs)


def test_status_fault_with_custom_body(sandbox, http):
    sandbox.add_fault("/weatherapi", "status", status=503, body={"error": {"message": "down"}})

    response = _get(http, sandbox)

    assert response.status_code == 503
    assert response.json() == {"error": {"message": "down"}}
    assert response.headers["X-Sandbox"] == "true"


def test_status_fault_can_fake_a_places_status_with_http_200(sandbox, http):
    sandbox.add_fault("/places/nearbysearch", "status", status=200, body={"status": "OVER_QUERY_LIMIT"})

    response = http.get(sandbox.url + "/places/nearbysearch/json",
                        params={"key": "k", "location": "1,2", "radius": 10}, timeout=5)

    assert response.status_code == 200 and response.json() == {"status": "OVER_QUERY_LIMIT"}


def test_retry_after_fault(sandbox, http):
    sandbox.add_fault("/weatherapi", "retry_after", retry_after=7)

    response = _get(http, sandbox)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"]["message"]


def test_timeout_fault_delays_then_answers_normally(sandbox, http):
    normal = _get(http, sandbox).content
    sandbox.add_fault("/weatherapi", "timeout", delay=0.3)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(sandbox.url + WEATHER, params=PARAMS, timeout=0.05)
    sandbox.add_fault("/weatherapi", "timeout", delay=0.05)
    delayed = _get(http, sandbox)

    assert delayed.status_code == 200 and delayed.content == normal
    assert [r["fault"] for r in sandbox.requests()] == [None, "timeout", "timeout"]


def test_slow_drip_eventually_sends_the_normal_body(sandbox, http):
    normal = _get(http, sandbox).content
    sandbox.add_fault("/weatherapi", "slow_drip", interval=0.001, chunk=64)

    response = _get(http, sandbox)

    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(normal)
    assert response.content == normal


def test_slow_drip_sends_headers_then_only_one_chunk_per_interval(sandbox):
    sandbox.add_fault("/weatherapi", "slow_drip", interval=30, chunk=10)
    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as sock:
        sock.sendall(f"GET {WEATHER}?key=k&q=10,20 HTTP/1.1\r\nHost: sandbox\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 10:
            received += sock.recv(4096)
        head, body = received.split(b"\r\n\r\n", 1)

        assert head.startswith(b"HTTP/1.1 200")
        assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 10
        assert body == b'{"location'  # the first 10 bytes, and nothing more until the next interval
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(1)


def test_slow_drip_trips_a_client_read_timeout(sandbox, http):
    sandbox.add_fault("/weatherapi", "slow_drip", interval=0.5, chunk=10)

    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(sandbox.url + WEATHER, params=PARAMS, timeout=(5, 0.1)).content


def test_reset_fault_drops_the_connection_without_an_answer(sandbox, http):
    sandbox.add_fault("/weatherapi", "reset")

    with pytest.raises(requests.exceptions.ConnectionError):
        _get(http, sandbox)
    assert _get(http, sandbox).status_code == 200  # the session recovers on a new connection


def test_malformed_json_fault(sandbox, http):
    sandbox.add_fault("/weatherapi", "malformed_json")

    response = _get(http, sandbox)

    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_wrong_content_type_fault(sandbox, http):
    sandbox.add_fault("/weatherapi", "wrong_content_type")

    response = _get(http, sandbox)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().lower().startswith("<!doctype html")


def test_huge_body_fault_is_valid_json_larger_than_size(sandbox, http):
    sandbox.add_fault("/weatherapi", "huge_body", size=300_000)

    response = _get(http, sandbox)

    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 300_000
    assert response.json()["sandbox"] is True


def test_huge_body_default_is_over_20_mb_and_client_can_stop_reading(sandbox, http):
    sandbox.add_fault("/weatherapi", "huge_body")

    with _get(http, sandbox, stream=True) as response:
        assert int(response.headers["Content-Length"]) > 20 * 1024 * 1024
        assert next(response.iter_content(1024)).startswith(b"{")
    assert _get(http, sandbox).status_code == 200


def test_count_limits_how_many_requests_are_faulted(sandbox, http):
    sandbox.add_fault("/weatherapi", "status", status=500, count=2)

    statuses = [_get(http, sandbox).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert sandbox.faults() == []


def test_count_minus_one_lasts_until_cleared(sandbox, http):
    sandbox.add_fault("/weatherapi", "status", status=502, count=-1)

    assert [_get(http, sandbox).status_code for _ in range(4)] == [502] * 4
    sandbox.clear_faults()
    assert _get(http, sandbox).status_code == 200


def test_faults_match_by_path_prefix_and_method(sandbox, http):
    sandbox.add_fault("/places/details", "status", status=500)
    sandbox.add_fault("/webhooks/", "status", status=500, method="POST")

    assert _get(http, sandbox).status_code == 200
    assert http.get(sandbox.url + "/webhooks/x", timeout=5).status_code == 405  # GET does not match
    assert http.post(sandbox.url + "/webhooks/x", json={}, timeout=5).status_code == 500
    assert http.get(sandbox.url + "/places/details/json", params={"key": "k", "place_id": "x"}).status_code == 500
    assert sandbox.stats()["faults_injected"] == 2


def test_admin_api_adds_lists_and_clears_faults(sandbox, http):
    added = http.post(f"{sandbox.url}/_sandbox/faults", json={"faults": [
        {"path": "/weatherapi", "kind": "status", "status": 504, "count": 1},
        {"path": "/openai", "kind": "reset", "count": -1}]}).json()
    assert [f["kind"] for f in added["faults"]] == ["status", "reset"]

    assert _get(http, sandbox).status_code == 504
    assert [f["kind"] for f in http.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]] == ["reset"]
    assert http.delete(f"{sandbox.url}/_sandbox/faults").json() == {"faults": []}
    assert sandbox.faults() == []


@pytest.mark.parametrize("spec", [
    {"path": "/x", "kind": "explode"},
    {"path": "x", "kind": "status"},
    {"path": "/x", "kind": "status", "count": 0},
    {"path": "/x", "kind": "status", "status": 42},
    {"path": "/x", "kind": "timeout", "delay": "long"},
])
def test_admin_api_rejects_bad_faults_and_adds_none(sandbox, http, spec):
    response = http.post(f"{sandbox.url}/_sandbox/faults",
                         json={"faults": [{"path": "/weatherapi", "kind": "reset"}, spec]})

    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert sandbox.faults() == []


def test_python_api_rejects_unknown_kind(sandbox):
    with pytest.raises(ValueError):
        sandbox.add_fault("/x", "explode")


def test_faults_can_target_one_chat_model(sandbox, http):
    sandbox.add_fault("/openai", "status", status=503, model="m/down", count=-1)
    url = f"{sandbox.url}/openai/v1/chat/completions"

    def ask(model):
        return http.post(url, json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                         headers={"Authorization": "Bearer sandbox"}, timeout=5).status_code

    assert [ask("m/down"), ask("m/up"), ask("m/down")] == [503, 200, 503]
    assert sandbox.faults()[0]["model"] == "m/down"
