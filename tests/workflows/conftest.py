"""Fixtures for the bundled-workflow tests: one in-process sandbox upstream (real TCP on 127.0.0.1), and engines
wired to it exactly as the service wires them (real integrations, in-process cache and rate limits)."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest

from llm_service.config import Config
from llm_service.http import build_http_client
from llm_service.sandbox import SandboxServer
from llm_service.services import build_engine
from tests.support import REPO, TEST_KEYS

WORKFLOWS = REPO / "workflows"


class SkippingClock:
    """Real monotonic time plus every second "slept": retry backoff costs nothing, the deadline still counts it."""

    def __init__(self) -> None:
        self.slept = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)


@pytest.fixture(scope="session")
def _upstream_server() -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server: SandboxServer) -> Iterator[SandboxServer]:
    """The shared sandbox with no faults and empty request logs."""
    _upstream_server.reset()
    yield _upstream_server
    _upstream_server.reset()


@pytest.fixture
def sandbox_config(upstream: SandboxServer) -> Callable[..., Config]:
    def build(**env: str) -> Config:
        return Config.from_env({**upstream.base_urls(), **TEST_KEYS, "WORKFLOWS_DIR": str(WORKFLOWS), **env})
    return build


@pytest.fixture
def make_engine(sandbox_config: Callable[..., Config]) -> Iterator[Callable[..., Any]]:
    """``make_engine(**env)`` -> an Engine talking to the sandbox. Each engine has its own (empty) cache, and a
    clock whose sleeps are instant, so retry tests do not wait."""
    clients = []

    def build(**env: str) -> Any:
        config = sandbox_config(**env)
        http = build_http_client(config)
        clients.append(http)
        engine = build_engine(config, http=http, redis_client=None)
        engine.tools.clock = SkippingClock()
        return engine

    yield build
    for client in clients:
        client.close()

