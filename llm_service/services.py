"""Wiring: builds the process's shared collaborators from one :class:`Config`.

The CLI, the Celery worker and the Flask API all start here, so they share one HTTP helper (one Session, pool sized
for the worker's concurrency), one Redis connection pool and one engine per process.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .cache import make_cache, redis_reachable
from .config import Config
from .engine import Engine, EngineLimits
from .engine.ports import Observer
from .http import HttpClient, build_http_client
from .integrations import build_providers, build_services
from .ratelimit import make_rate_limiter
from .redaction import register_secrets

log = logging.getLogger("llm_service")


def engine_limits(config: Config) -> EngineLimits:
    return EngineLimits(
        max_steps=config.workflow_max_steps, parallel_max_width=config.parallel_max_width,
        llm_max_tokens_cap=config.llm_max_tokens_cap, max_llm_cost_usd=config.job_max_llm_cost_usd,
        external_api_timeout=config.external_api_timeout_seconds, llm_timeout=config.llm_timeout_seconds,
        cache_ttl_default=config.cache_ttl_default)


def make_redis(config: Config, *, max_connections: int | None = None, url: str | None = None) -> Any:
    """A redis-py client whose pool blocks (briefly) instead of failing when every connection is in use.

    The default pool raises ``MaxConnectionsError`` under high green-thread concurrency; a blocking pool sized for
    the concurrency waits for a free connection instead. Its connections check for unread data on checkout with
    one OS poll (:mod:`llm_service.redis_parser`).
    """
    import redis

    from .redis_parser import connection_kwargs

    size = max_connections or max(20, config.worker_concurrency * 2 + 10)
    pool = redis.BlockingConnectionPool.from_url(
        url or config.redis_url, max_connections=size, timeout=10, socket_timeout=10, socket_connect_timeout=3,
        health_check_interval=30, retry_on_timeout=False, **connection_kwargs())
    return redis.Redis(connection_pool=pool)


def build_engine(config: Config, *, http: HttpClient, redis_client: Any | None,
                 observer: Observer | None = None) -> Engine:
    """The engine with Redis-backed cache and limits when a client is given, in-process ones otherwise."""
    return Engine(
        workflows_dir=config.workflows_dir,
        services=build_services(config, http),
        providers=build_providers(config, http),
        cache=make_cache(redis_client, prefix=config.redis_key_prefix),
        limiter=make_rate_limiter(redis_client, prefix=config.redis_key_prefix,
                                  global_limit=config.rate_limit_global, per_user_limit=config.rate_limit_per_user,
                                  window_seconds=config.rate_limit_window_seconds),
        observer=observer, limits=engine_limits(config), default_execution=config.workflow_execution,
        debug=config.debug_mode)


@dataclass
class Services:
    config: Config
    http: HttpClient
    redis: Any | None
    engine: Engine
    extras: dict = field(default_factory=dict)

    @property
    def store(self) -> Any:
        """The Redis job store (API and worker only)."""
        if "store" not in self.extras:
            from .jobs import JobStore

            if self.redis is None:
                raise RuntimeError("the job store needs Redis (REDIS_URL)")
            self.extras["store"] = JobStore(self.redis, prefix=self.config.redis_key_prefix,
                                            retention_days=self.config.job_retention_days)
        return self.extras["store"]

    def close(self) -> None:
        self.http.close()
        if self.redis is not None:
            self.redis.close()


def build(config: Config, *, redis_mode: str = "required", observer: Observer | None = None) -> Services:
    """``redis_mode``: ``"required"`` (API, worker), ``"auto"`` (CLI: use Redis if it answers, else in-process
    cache and limits), ``"off"``."""
    register_secrets(config.secrets())
    http = build_http_client(config)
    client = None
    if redis_mode != "off":
        client = make_redis(config)
        if redis_mode == "auto" and not redis_reachable(client, timeout=0.3):
            log.info("Redis at REDIS_URL is not reachable: using in-process cache and rate limits")
            client.close()
            client = None
    engine = build_engine(config, http=http, redis_client=client, observer=observer)
    return Services(config=config, http=http, redis=client, engine=engine)
