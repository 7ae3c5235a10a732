"""Prometheus metrics: the observer's series, the runtime's job/webhook/recovery counters, the scrape-time job-store
and queue gauges (real Redis, real Celery publishing), the API's /metrics, and the worker's server under eventlet."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
import responses
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from llm_service.jobs import JobStore
from llm_service.observability import (MetricsObserver, StoreCollector, new_registry, queue_keys, render,
                                       start_worker_metrics_server, upstream_outcome)
from tests.observability.conftest import HOOK, SECRET_INPUT

HERE = Path(__file__).parent
REDIS_URL = "redis://127.0.0.1:6379/15"


def samples(registry) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted label items): value}`` parsed back from the text exposition."""
    body, _ = render(registry)
    return parsed(body.decode())


def parsed(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(table: dict, name: str, **labels: str) -> float | None:
    return table.get((name, tuple(sorted(labels.items()))))


# ------------------------------------------------------------------------------------------------- the observer


def test_the_observer_records_steps_upstream_outcomes_and_cache_results(metrics):
    observer = MetricsObserver(metrics)
    observer.step_finished(job_id="j1", step_id="a", step_type="llm", success=True, duration_ms=1500, error=None,
                           cached=None)
    observer.step_finished(job_id="j1", step_id="b", step_type="external_api", success=False, duration_ms=20,
                           error={"type": "UpstreamServerError", "category": "EXTERNAL_ERROR"}, cached=None)
    for status, cached, error_type in [(200, False, None), (None, True, None), (503, False, "UpstreamServerError"),
                                       (None, False, "UpstreamTimeout"), (200, False, "UpstreamBadResponse")]:
        observer.upstream_call(job_id="j1", service="weatherapi", operation="current", status=status,
                               duration_ms=250, cached=cached, error_type=error_type)

    table = samples(metrics.registry)
    assert value(table, "llm_step_duration_seconds_count", step_type="llm", success="true") == 1
    assert value(table, "llm_step_duration_seconds_sum", step_type="llm", success="true") == 1.5
    assert value(table, "llm_step_duration_seconds_count", step_type="external_api", success="false") == 1
    upstream = {"service": "weatherapi", "operation": "current"}
    for outcome in ("2xx", "cache_hit", "5xx", "error:UpstreamTimeout", "error:UpstreamBadResponse"):
        assert value(table, "llm_upstream_request_duration_seconds_count", outcome=outcome, **upstream) == 1
    assert value(table, "llm_upstream_request_duration_seconds_sum", outcome="2xx", **upstream) == 0.25
    assert value(table, "llm_upstream_cache_total", service="weatherapi", result="hit") == 1
    assert value(table, "llm_upstream_cache_total", service="weatherapi", result="miss") == 4
    assert "j1" not in render(metrics.registry)[0].decode()  # job ids are never labels


@pytest.mark.parametrize("status, cached, error_type, expected", [
    (200, False, None, "2xx"), (404, False, "UpstreamHTTPError", "4xx"), (429, False, "UpstreamRateLimited", "4xx"),
    (502, False, "UpstreamServerError", "5xx"), (None, False, "UpstreamConnectionError",
                                                   "error:UpstreamConnectionError"),
    (None, True, None, "cache_hit"), (None, False, None, "unknown"), (None, False, "bad type!", "error:bad_type_"),
])
def test_upstream_outcome_labels(status, cached, error_type, expected):
    assert upstream_outcome(status=status, cached=cached, error_type=error_type) == expected


def test_a_broken_metrics_backend_never_reaches_the_engine():
    observer = MetricsObserver(object())  # type: ignore[arg-type]  # every metrics call raises AttributeError
    assert observer.step_finished(job_id=None, step_id="a", step_type="llm", success=True, duration_ms=1,
                                  error=None, cached=None) is None
    assert observer.upstream_call(job_id=None, service="s", operation="o", status=200, duration_ms=1,
                                  cached=False, error_type=None) is None


def test_the_engine_reports_each_step_and_each_upstream_call(runtime, submit, metrics):
    first, second = submit(), submit()
    assert runtime.run_job(first)["status"] == "completed"
    assert runtime.run_job(second)["status"] == "completed"  # same input: answered by the cache

    table = samples(metrics.registry)
    assert value(table, "llm_step_duration_seconds_count", step_type="external_api", success="true") == 2
    call = {"service": "fake", "operation": "echo"}
    assert value(table, "llm_upstream_request_duration_seconds_count", outcome="2xx", **call) == 1
    assert value(table, "llm_upstream_request_duration_seconds_count", outcome="cache_hit", **call) == 1
    assert value(table, "llm_upstream_cache_total", service="fake", result="hit") == 1
    assert value(table, "llm_upstream_cache_total", service="fake", result="miss") == 1
    text = render(metrics.registry)[0].decode()
    assert first not in text and SECRET_INPUT not in text


# ---------------------------------------------------------------------------------------- the runtime's counters


def test_job_outcomes_and_jobs_in_progress(runtime, submit, metrics):
    runtime.run_job(submit())
    runtime.run_job(submit("bad"))
    finished = submit()
    runtime.run_job(finished)
    runtime.run_job(finished)  # a redelivered message: skipped, not counted again

    table = samples(metrics.registry)
    assert value(table, "llm_jobs_total", status="completed") == 2
    assert value(table, "llm_jobs_total", status="failed") == 1
    assert value(table, "llm_jobs_total", status="cancelled") == 0  # known outcomes are exported from the start
    assert value(table, "llm_jobs_in_progress") == 0
    assert value(table, "llm_step_duration_seconds_count", step_type="external_api", success="false") == 1


def test_jobs_in_progress_counts_a_running_job(runtime, submit, metrics):
    seen = []
    original = runtime.services.engine.run

    def run_and_look(*args, **kwargs):
        seen.append(value(samples(metrics.registry), "llm_jobs_in_progress"))
        return original(*args, **kwargs)

    runtime.services.engine.run = run_and_look
    runtime.run_job(submit())
    assert seen == [1]
    assert value(samples(metrics.registry), "llm_jobs_in_progress") == 0


@responses.activate
def test_webhook_delivery_outcomes_are_counted(runtime, submit, metrics):
    responses.add(responses.POST, HOOK, status=500)
    responses.add(responses.POST, HOOK, status=200)
    job_id = submit()
    runtime.run_job(job_id)
    runtime.deliver_webhook(job_id, "workflow.completed", 1)
    runtime.deliver_webhook(job_id, "workflow.completed", 2)
    runtime.deliver_webhook(job_id, "workflow.completed", 3)  # already delivered: nothing sent

    table = samples(metrics.registry)
    assert value(table, "llm_webhook_deliveries_total", outcome="retry") == 1
    assert value(table, "llm_webhook_deliveries_total", outcome="delivered") == 1
    assert value(table, "llm_webhook_deliveries_total", outcome="already_delivered") == 1


def test_recoveries_by_the_sweeper_are_counted(runtime, submit, metrics):
    job_id = submit()
    assert runtime.store.claim(job_id, worker_id="dead-worker", lease_seconds=0.05).outcome == "claimed"
    time.sleep(0.2)  # the dead worker's lease and the grace period pass
    runtime.maintenance_tick(force=True)
    assert value(samples(metrics.registry), "llm_job_recoveries_total", outcome="requeued") == 1


# ------------------------------------------------------------------------------- scrape-time job store and queue


@pytest.fixture
def celery_queue(make_config, redis_prefix, redis_client):
    """A real Celery app publishing to Redis db 15, on a queue named after this test's prefix."""
    from llm_service.tasks.celery_app import make_celery
    from llm_service.tasks.queue import CeleryJobQueue

    config = make_config(redis_url=REDIS_URL, redis_key_prefix=redis_prefix, celery_queue=f"{redis_prefix}:q")
    app = make_celery(config)
    yield config, CeleryJobQueue(app)
    app.close()
    for key in redis_client.scan_iter(match=f"_kombu.binding*.{config.celery_queue}"):  # kombu's routing table
        redis_client.delete(key)


def test_the_collector_reads_jobs_by_status_and_the_real_queue_depth(redis_client, redis_prefix, celery_queue):
    config, queue = celery_queue
    store = JobStore(redis_client, prefix=redis_prefix)
    queued = [store.create({"workflow_name": "w"})["job_id"] for _ in range(3)]
    assert store.claim(queued[0], worker_id="w1", lease_seconds=60).outcome == "claimed"
    for job_id, priority in zip(queued, (10, 3, 0)):  # broker priorities 0, 7 and 10: three different lists
        queue.enqueue(job_id, priority=priority)

    registry = new_registry()
    registry.register(StoreCollector(store, broker=redis_client, queue=config.celery_queue))
    table = samples(registry)
    assert value(table, "llm_jobs_by_status", status="queued") == 2
    assert value(table, "llm_jobs_by_status", status="processing") == 1
    assert value(table, "llm_jobs_by_status", status="completed") == 0
    assert value(table, "llm_queue_depth") == 3
    assert value(table, "llm_job_store_up") == 1 and value(table, "llm_broker_up") == 1
    # kombu put the messages exactly where the collector looks
    lists = {key.decode() for key in redis_client.scan_iter(match=f"{config.celery_queue}*")
             if redis_client.type(key) == b"list"}
    assert len(lists) == 3 and lists <= set(queue_keys(config.celery_queue))


def test_an_unreachable_redis_leaves_the_gauges_out_and_is_logged_once(caplog):
    down = redis.Redis(host="127.0.0.1", port=1, db=15, socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))
    registry = new_registry()
    registry.register(StoreCollector(JobStore(down, prefix="unused"), broker=down, queue="q"))
    with caplog.at_level("WARNING", logger="llm_service.observability"):
        first, second = samples(registry), samples(registry)
    for table in (first, second):
        assert value(table, "llm_job_store_up") == 0 and value(table, "llm_broker_up") == 0
        assert not [key for key in table if key[0] in ("llm_jobs_by_status", "llm_queue_depth")]
    outages = [r for r in caplog.records if getattr(r, "event", None) == "metrics.source_down"]
    assert sorted(r.source for r in outages) == ["broker", "job store"]  # once each, not once per scrape
    down.close()


# -------------------------------------------------------------------------------------------------- the API


def test_api_metrics_count_requests_submissions_and_store_gauges(make_api, prefix):
    api = make_api(celery_queue=f"{prefix}:q")
    job_id = api.post("/api/v1/workflow", json={"workflow_name": "greeting", "input_data": {"person": "Ada"}}
                      ).get_json()["job_id"]
    assert api.post("/api/v1/workflow", json={"workflow_name": "nope", "input_data": {}}).status_code == 404
    assert api.client.get("/").status_code == 200
    assert api.client.get("/api/v1/workflows").status_code == 401  # no secret
    assert api.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert api.client.get("/no/such/path").status_code == 404

    response = api.client.get("/metrics")  # no secret needed
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    table = parsed(text)
    assert value(table, "llm_api_requests_total", endpoint="meta.root", method="GET", status="200") == 1
    assert value(table, "llm_api_requests_total", endpoint="api_v1.workflows.list_workflows", method="GET",
                 status="401") == 1
    assert value(table, "llm_api_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert value(table, "llm_api_request_duration_seconds_count", endpoint="api_v1.jobs.job_detail",
                 method="GET", status="200") == 1
    assert value(table, "llm_api_job_submissions_total", outcome="accepted") == 1
    assert value(table, "llm_api_job_submissions_total", outcome="rejected") == 1
    assert value(table, "llm_jobs_by_status", status="queued") == 1
    assert value(table, "llm_queue_depth") == 0  # the FakeQueue published nothing to Redis
    assert job_id not in text and "/no/such/path" not in text


def test_api_metrics_answer_while_redis_is_down(make_api, unreachable_services):
    api = make_api(services=unreachable_services)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    table = parsed(response.get_data(as_text=True))
    assert value(table, "llm_job_store_up") == 0
    assert not [key for key in table if key[0] == "llm_jobs_by_status"]


def test_the_openapi_document_describes_metrics_as_text(api):
    operation = api.client.get("/openapi.json").get_json()["paths"]["/metrics"]["get"]
    assert operation["security"] == []
    assert operation["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_apps_do_not_share_counters(make_api):
    first, second = make_api(), make_api()
    first.client.get("/")
    table = parsed(second.client.get("/metrics").get_data(as_text=True))
    assert value(table, "llm_api_requests_total", endpoint="meta.root", method="GET", status="200") is None


# --------------------------------------------------------------------------------------- the worker's server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_worker_metrics_server_is_off_when_no_port_is_set(make_config):
    assert start_worker_metrics_server(make_config(worker_metrics_port=0), services=object()) is None


def test_worker_metrics_server_serves_under_eventlet(redis_prefix):
    port = free_port()
    probe = subprocess.Popen([sys.executable, str(HERE / "metrics_server_probe.py"), str(port), redis_prefix],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=str(HERE.parent.parent))
    try:
        line = probe.stdout.readline()
        assert line, probe.stderr.read() if probe.poll() is not None else "the probe printed nothing"
        verdict = json.loads(line)
        assert verdict == {"green": True, "port": port, "same_server_twice": True, "self_scrape": True}
        # scraped from another process while the probe's main green thread sleeps, as the worker's hub does
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            content_type = response.headers["Content-Type"]
            table = parsed(response.read().decode())
    finally:
        probe.kill()
        probe.communicate(timeout=10)
    assert content_type.startswith("text/plain")
    assert value(table, "llm_step_duration_seconds_count", step_type="llm", success="true") == 1
    assert value(table, "llm_jobs_by_status", status="queued") == 1
    assert value(table, "llm_queue_depth") == 0 and value(table, "llm_job_store_up") == 1
