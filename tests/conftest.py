"""Shared fixtures: the repository's paths, the old service's fixture workflows, and an engine wired to the real
integrations (requests intercepted by ``responses``, so no test reaches the internet)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_KEYS = {
    "OPENROUTER_API_KEY": "sk-or-test-0123456789abcdef",
    "WEATHERAPI_API_KEY": "weather-test-key-0123456789",
    "GOOGLE_PLACES_API_KEY": "places-test-key-0123456789",
}
UPSTREAM = {
    "OPENROUTER_BASE_URL": "https://openrouter.test/api/v1",
    "WEATHERAPI_BASE_URL": "https://weather.test/v1",
    "GOOGLE_PLACES_BASE_URL": "https://places.test/maps/api/place",
}


def shared_dir() -> Path | None:
    """``../shared`` next to the repository (or ``LLM_SHARED_DIR``): the old service's reference material."""
    candidates = [os.environ.get("LLM_SHARED_DIR"), str(REPO.parent / "shared")]
    for candidate in candidates:
        if candidate and Path(candidate, "fixtures", "original").is_dir():
            return Path(candidate)
    return None


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
