"""Fixtures for the fault suite: the integration harness's sandbox and stacks, plus module-scoped stacks.

Every case here runs real worker and API processes on real Redis (see ``tests/integration/stack.py``); the suite
runs on its own (``pytest tests/reliability``) as well as in the full run.
"""
from __future__ import annotations

import shutil
from typing import Callable, Iterator

import pytest

from tests.integration.conftest import fresh_sandbox, sandbox, stack_factory  # noqa: F401 (fixtures)
from tests.integration.stack import Stack


@pytest.fixture(scope="module")
def module_stack_factory(tmp_path_factory, sandbox) -> Iterator[Callable[..., Stack]]:  # noqa: F811
    """Like ``stack_factory``, for stacks shared by the cases of one module (stopped after the module)."""
    stacks: list[Stack] = []

    def build(name: str = "stack", **kwargs) -> Stack:
        stack = Stack(tmp_path_factory.mktemp(name), sandbox, **kwargs)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/reliability" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.integration)
            if shutil.which("redis-server") is None:
                item.add_marker(pytest.mark.skip(reason="needs redis-server"))
