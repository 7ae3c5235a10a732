"""Shared fixtures: the repository's paths, the old service's fixture workflows, and an engine wired to the real
integrations (requests intercepted by ``responses``, so no test reaches the internet)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support import REPO, TEST_KEYS, UPSTREAM, shared_dir


@pytest.fixture
def original_fixture() -> Path:
    """The old service's real workflow root (definitions/ + prompts/), used unmodified and read in place."""
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared (the old service's fixtures) is not present next to the repository; "
                    "set LLM_SHARED_DIR to run the compatibility tests")
    return shared / "fixtures" / "original"


@pytest.fixture
def make_config() -> Callable[..., Any]:
    """A Config as the environment would give it, with test keys and upstreams that only `responses` answers."""
    from llm_service.config import Config

    def build(**overrides: Any) -> Config:
        env = {**TEST_KEYS, **UPSTREAM, "WORKFLOWS_DIR": str(REPO / "workflows")}
        env.update({k: str(v) for k, v in overrides.pop("env", {}).items()})
        return Config.from_env(env).with_overrides(**overrides)
    return build


@pytest.fixture
def make_engine(make_config: Callable[..., Any]) -> Callable[..., Any]:
    """``make_engine(workflows_dir=..., **engine_kwargs)`` -> Engine with real integrations and in-process
    cache/limits. Wrap calls in ``responses`` to answer the upstream requests."""
    from llm_service import services
    from llm_service.http import build_http_client

    built: list[Any] = []

    def build(workflows_dir: Path | str | None = None, *, config: Any = None, **engine_kwargs: Any) -> Any:
        cfg = config or make_config()
        if workflows_dir is not None:
            cfg = cfg.with_overrides(workflows_dir=str(workflows_dir))
        http = build_http_client(cfg)
        built.append(http)
        engine = services.build_engine(cfg, http=http, redis_client=None)
        for key, value in engine_kwargs.items():
            setattr(engine, key, value)
        return engine

    yield build
    for http in built:
        http.close()
