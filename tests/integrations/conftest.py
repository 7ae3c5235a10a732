"""Shared fixtures for the integration tests: a real HttpClient with `responses` standing in for upstreams."""
import json
import traceback

import pytest
import responses

from llm_service.engine.errors import error_context
from llm_service.http.client import HttpClient


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def http():
    client = HttpClient(pool_size=4, user_agent="llm-service-tests", poll_interval=0.02)
    yield client
    client.close()


@pytest.fixture
def assert_no_secret(capsys, caplog):
    """Check an exception (its text, repr, error context and traceback) and all captured output for secrets."""

    def check(exc: BaseException, *secrets: str) -> None:
        captured = capsys.readouterr()
        said = "\n".join([
            str(exc), repr(exc), json.dumps(error_context(exc)),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            captured.out, captured.err, caplog.text,
        ])
        for secret in secrets:
            assert secret not in said

    return check
