"""GET /, /health, the framework error envelopes (404, 405, 413), and CORS."""
from __future__ import annotations

import re
import time

import pytest

from llm_service.api import create_app
from llm_service.api.queueing import UnavailableQueue
from llm_service.jobs.presence import WorkerPresence
from tests.api.support import AUTH

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_root_describes_the_service(make_api):
    api = make_api(api_title="My Service", api_version="9.9.9")
    response = api.client.get("/")
    assert response.status_code == 200
    assert response.get_json() == {"service": "My Service", "version": "9.9.9", "status": "online", "docs": "/docs"}


# ---------------------------------------------------------------------------------------------------- health

def live_workers(api, count: int, ttl: float = 30.0) -> None:
    for n in range(count):
        WorkerPresence(api.config.redis_key_prefix).publish(api.services.redis, f"host-{n}:1:ab", {"hostname": "h"},
                                                            ttl)


def test_health_is_healthy_with_redis_and_workers(api):
    live_workers(api, 3)
    response = api.client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "healthy"
    assert body["services"] == {"redis": {"status": "healthy"}, "database": {"status": "healthy"},
                                "celery": {"status": "healthy", "workers": 3}}
    assert body["version"] == api.config.api_version and ISO_Z.match(body["timestamp"])
    assert api.queue.ping_timeouts == []  # served from the heartbeats, no broker round trip


def test_health_is_degraded_without_workers(api):
    response = api.client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["services"]["celery"] == {"status": "no_workers", "workers": 0}


def test_health_turns_degraded_when_the_last_heartbeat_expires(api):
    live_workers(api, 1, ttl=0.3)
    assert api.client.get("/health").get_json()["status"] == "healthy"
    time.sleep(0.4)
    body = api.client.get("/health").get_json()
    assert body["status"] == "degraded" and body["services"]["celery"] == {"status": "no_workers", "workers": 0}
    assert api.services.redis.smembers(f"{api.config.redis_key_prefix}:workers") == set()  # forgotten


def test_health_is_503_unhealthy_when_redis_is_down(make_api, unreachable_services):
    api = make_api(services=unreachable_services)
    response = api.client.get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    redis_health = body["services"]["redis"]
    assert redis_health["status"] == "unhealthy" and "ConnectionError" in redis_health["error"]
    assert len(redis_health["error"]) <= 200
    assert body["services"]["database"] == redis_health  # the job store is Redis
    assert body["services"]["celery"] == {"status": "unavailable"}


def test_health_ping_uses_its_own_short_timeouts(api):
    probe = api.app.extensions["llm_service"].health._probe
    kwargs = probe.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] <= 1.0 and kwargs["socket_connect_timeout"] <= 1.0
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6379, 15)


def test_without_the_celery_side_the_app_still_starts_and_refuses_submissions(api):
    app = create_app(api.config, services=api.services, queue=UnavailableQueue("celery not installed"))
    client = app.test_client()
    assert client.get("/health").get_json()["services"]["celery"] == {"status": "no_workers", "workers": 0}
    response = client.post("/api/v1/workflow", json={"workflow_name": "greeting", "input_data": {}}, headers=AUTH)
    assert response.status_code == 503
    assert api.job_keys() == []


# ---------------------------------------------------------------------------------------------------- envelopes

def test_unknown_route_is_a_json_404(api):
    response = api.client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    detail = response.get_json()["detail"]
    assert detail["error"] == "NotFound" and "/api/v1/nothing-here" in detail["message"]


@pytest.mark.parametrize("method, path, allowed", [
    ("put", "/api/v1/jobs", "GET"), ("get", "/api/v1/workflow", "POST"), ("post", "/health", "GET"),
    ("delete", "/api/v1/workflows", "GET"),
])
def test_wrong_method_is_a_json_405(api, method, path, allowed):
    response = getattr(api.client, method)(path, headers=AUTH)
    assert response.status_code == 405
    detail = response.get_json()["detail"]
    assert detail["error"] == "MethodNotAllowed"
    assert allowed in detail["allowed_methods"] and allowed in response.headers["Allow"]


def test_body_over_the_limit_is_a_json_413(make_api):
    api = make_api(max_content_length=2048)
    body = '{"workflow_name": "greeting", "input_data": {"x": "' + "a" * 4000 + '"}}'
    response = api.post("/api/v1/workflow", data=body, content_type="application/json")
    assert response.status_code == 413
    detail = response.get_json()["detail"]
    assert detail["error"] == "PayloadTooLarge" and detail["max_bytes"] == 2048
    assert "2048" in detail["message"]
    assert api.job_keys() == []


def test_errors_are_json_with_the_detail_envelope(api):
    for response in (api.client.get("/nope"), api.client.put("/api/v1/jobs"), api.client.get("/api/v1/jobs"),
                     api.post("/api/v1/workflow", data="{")):
        assert response.mimetype == "application/json"
        detail = response.get_json()["detail"]
        assert isinstance(detail["error"], str) and isinstance(detail["message"], str)


# ---------------------------------------------------------------------------------------------------- CORS

def test_cors_preflight_from_an_allowed_origin(make_api):
    api = make_api(cors_origins=("http://localhost:3000", "https://app.example.com"))
    response = api.client.options("/api/v1/workflow", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-secret"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-api-secret"
    assert "Origin" in response.headers["Vary"]


def test_cors_preflight_from_another_origin_is_refused(make_api):
    api = make_api(cors_origins=("http://localhost:3000",))
    response = api.client.options("/api/v1/jobs", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 400
    assert response.get_json()["detail"]["error"] == "DisallowedCORSOrigin"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_normal_and_error_responses(make_api):
    api = make_api(cors_origins=("http://localhost:3000",))
    ok = api.get("/api/v1/jobs", headers={"Origin": "http://localhost:3000"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    denied = api.client.get("/api/v1/jobs", headers={"Origin": "http://localhost:3000"})
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    other = api.get("/api/v1/jobs", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_cors_wildcard_echoes_any_origin(make_api):
    api = make_api(cors_origins=("*",))
    response = api.client.get("/", headers={"Origin": "https://anything.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://anything.example"
