"""A property-based pass over the *published* OpenAPI document (schemathesis), bounded for CI.

``tests/api/test_api_fuzz.py`` fuzzes a hand-written list of operations in two separate passes (valid requests with
the default checks, invalid ones only for "no 5xx and an error body"). This pass extends it:

* the operations come from the document served at ``/openapi.json`` (``schema.parametrize``), so an endpoint added
  later is fuzzed without anybody listing it;
* every generated request, valid or invalid, is held to the whole document: no 5xx, a documented status code, the
  documented content type and headers, a body matching the documented schema, valid data accepted, undeclared
  methods answered 405, and the API secret not ignored;
* every 4xx uses the ``{"detail": {"error", "message"}}`` envelope;
* the store holds jobs in every status, so the job endpoints also answer for ids that exist.

Bounded by ``MAX_EXAMPLES`` per operation; the module runs in seconds.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from llm_service import services as wiring
from llm_service.api import create_app
from llm_service.config import Config
from tests.api.support import AUTH, REDIS_URL, SECRET, FakeQueue, fresh_idempotency_key, new_job
from tests.support import REPO, TEST_KEYS, UPSTREAM

MAX_EXAMPLES = 100
JOB_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
PREFIX = f"test-hostile:{uuid.uuid4().hex}"

# Checks left out, and why:
# * negative_data_rejection: the API coerces some values on purpose, as the old API did ("5" for a priority, 0 or
#   "yes" for a boolean, any UUID spelling for ids, an empty user_id meaning none); the document describes the
#   conservative form clients should send. Invalid requests are still held to every other check here, and the
#   hostile-input matrix (test_hostile_input.py) asserts the refusals that matter.
# * on /api/v1/jobs/bulk only: GET /api/v1/jobs/bulk is GET /api/v1/jobs/{job_id} with the id "bulk" (a 400, kept
#   from the old API), so that path does answer GET and lists it in Allow.
ALWAYS_EXCLUDED = [checks.negative_data_rejection]
SHARED_PATH_EXCLUDED = {"/api/v1/jobs/bulk": [checks.unsupported_method, checks.allow_header_conformance]}


def _build_app():
    """One app for the module. ``schema.parametrize`` needs the document when the module is collected (the lazy
    ``schemathesis.pytest.from_fixture`` loader of schemathesis 4.32 fails under pytest 9: it writes
    ``request.node._nodeid``), and building the app touches neither Redis nor the network: connections open on the
    first request that needs them."""
    config = Config.from_env({**TEST_KEYS, **UPSTREAM}).with_overrides(
        api_secret=SECRET, redis_url=REDIS_URL, redis_key_prefix=PREFIX, workflows_dir=str(REPO / "workflows"),
        webhook_allow_private_networks=True)
    services = wiring.build(config)
    return create_app(config, services=services, queue=FakeQueue()), services


APP, SERVICES = _build_app()
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=schemathesis.Config.from_dict({
    "headers": dict(AUTH),
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
}))


@pytest.fixture(scope="module", autouse=True)
def jobs_in_every_status() -> Iterator[None]:
    """Jobs the store really holds (so the job endpoints answer 200 as well as 404); removed with the prefix."""
    for status in JOB_STATUSES:
        new_job(SERVICES.store, status, webhook_url="https://hooks.example.com/done")
    yield
    cleaner = redis.Redis.from_url(REDIS_URL)
    keys = list(cleaner.scan_iter(match=f"{PREFIX}:*", count=1000))
    if keys:
        cleaner.delete(*keys)
    cleaner.close()
    SERVICES.close()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_request_is_answered_as_the_document_says(case):
    excluded = ALWAYS_EXCLUDED + SHARED_PATH_EXCLUDED.get(case.path, [])
    fresh_idempotency_key(case)
    response = case.call_and_validate(headers=AUTH, excluded_checks=excluded)
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        detail = response.json()["detail"]
        assert isinstance(detail["error"], str) and detail["error"]
        assert isinstance(detail["message"], str) and detail["message"]
