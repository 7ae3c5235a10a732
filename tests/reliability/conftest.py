"""Fixtures for the fault suite: the integration harness's sandbox and stacks, plus module-scoped stacks.

Every case here runs real worker and API processes on real Redis (see ``tests/integration/stack.py``); the suite
runs on its own (``pytest tests/reliability``) as well as in the full run.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.integration.conftest import fresh_sandbox, sandbox, stack_factory  # noqa: F401 (fixtures)
from tests.integration.stack import StackFactory


@pytest.fixture(scope="module")
def module_stack_factory(tmp_path_factory, sandbox) -> Iterator[StackFactory]:  # noqa: F811
    """Like ``stack_factory``, for stacks shared by the cases of one module (stopped after the module)."""
    factory = StackFactory(tmp_path_factory, sandbox)
    yield factory
    factory.stop_all()
