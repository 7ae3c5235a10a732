"""Property-based requests generated from the OpenAPI document (schemathesis + hypothesis).

Valid requests must be accepted and every response must conform to the document (status codes, content types,
response schemas); invalid requests (wrong types, out-of-range numbers, odd unicode, missing fields) must be
refused with a 4xx, never a 5xx.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.api.support import AUTH, fresh_idempotency_key

OPERATIONS = [
    ("POST", "/api/v1/workflow"), ("POST", "/api/v1/workflow/validate"), ("GET", "/api/v1/workflows"),
    ("GET", "/api/v1/status/{job_id}"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/cancel"), ("GET", "/api/v1/jobs/{job_id}/webhooks"),
    ("DELETE", "/api/v1/jobs/bulk"), ("GET", "/"), ("GET", "/health"),
]
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def operation_of(api, method: str, path: str):
    return schemathesis.openapi.from_wsgi("/openapi.json", api.app)[path][method]


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_valid_requests_are_accepted_and_answers_match_the_document(api, method, path):
    @given(case=operation_of(api, method, path).as_strategy())
    @FUZZ
    def run(case):
        fresh_idempotency_key(case)
        response = case.call_and_validate(headers=AUTH)
        assert response.status_code < 500

    run()


@pytest.mark.parametrize("method, path", [op for op in OPERATIONS if op[1] not in ("/", "/health")])
def test_invalid_requests_are_refused_with_a_4xx(api, method, path):
    @given(case=operation_of(api, method, path).as_strategy(GenerationMode.NEGATIVE))
    @FUZZ
    def run(case):
        response = case.call(headers=AUTH)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            detail = response.json()["detail"]
            assert isinstance(detail["error"], str) and isinstance(detail["message"], str)

    run()
