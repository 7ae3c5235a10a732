"""Fixtures for tests that run real worker and API processes against the sandbox upstream."""
from __future__ import annotations

import shutil

import pytest

from llm_service.sandbox import SandboxServer
from tests.integration.stack import WEBHOOK_SECRET, Stack


@pytest.fixture(scope="session")
def sandbox():
    with SandboxServer(webhook_secret=WEBHOOK_SECRET, latency_ms=20) as server:
        yield server


@pytest.fixture
def fresh_sandbox(sandbox):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def make_stack(tmp_path_factory, sandbox, name, **kwargs) -> Stack:
    return Stack(tmp_path_factory.mktemp(name), sandbox, **kwargs)


@pytest.fixture
def stack_factory(tmp_path_factory, sandbox, request):
    """Build stacks that are stopped (and their logs checked for forbidden text) after the test."""
    stacks: list[Stack] = []

    def build(name: str = "stack", **kwargs) -> Stack:
        stack = make_stack(tmp_path_factory, sandbox, name, **kwargs)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath) or "tests/reliability" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if shutil.which("redis-server") is None:
                item.add_marker(pytest.mark.skip(reason="needs redis-server"))
