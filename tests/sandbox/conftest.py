"""One sandbox server for the whole directory (real TCP on 127.0.0.1, random port), reset before every test."""
from __future__ import annotations

import pytest
import requests

from llm_service.sandbox import SandboxServer

SECRET = "sandbox-test-secret"


@pytest.fixture(scope="session")
def _shared_sandbox():
    server = SandboxServer(webhook_secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(_shared_sandbox):
    _shared_sandbox.reset()
    yield _shared_sandbox
    _shared_sandbox.reset()


@pytest.fixture
def secret():
    """The webhook secret the shared sandbox starts with."""
    return SECRET


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session
