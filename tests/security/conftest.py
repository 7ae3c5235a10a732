"""The security tests run the whole service in one process (``tests.inprocess_stack``)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.inprocess_stack import API_SECRET, Stack, make_stack, sandbox, write_root  # noqa: F401 (fixtures)

AUTH = {"X-API-Secret": API_SECRET}


@pytest.fixture
def keep_root_logging() -> Iterator[None]:
    """The CLI's ``configure_logging`` points the root logger at the (captured) stderr; put it back afterwards, so
    later tests do not log into a closed capture stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


