"""Fixtures for tests that run real worker and API processes against the sandbox upstream."""
from __future__ import annotations

from typing import Iterator

import pytest

from llm_service.sandbox import SandboxServer
from tests.integration.stack import WEBHOOK_SECRET, StackFactory


@pytest.fixture(scope="session")
def sandbox():
    with SandboxServer(webhook_secret=WEBHOOK_SECRET, latency_ms=20) as server:
        yield server


@pytest.fixture
def fresh_sandbox(sandbox):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def stack_factory(tmp_path_factory, sandbox) -> Iterator[StackFactory]:
    """Build stacks that are stopped after the test."""
    factory = StackFactory(tmp_path_factory, sandbox)
    yield factory
    factory.stop_all()
