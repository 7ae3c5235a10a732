"""All configuration, read from environment variables in this one place.

Every other module receives a :class:`Config` (or values taken from it); nothing else reads ``os.environ``.
The README's configuration table documents each variable; keep the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from .redaction import secret_values


class ConfigError(ValueError):
    """An environment variable holds a value we cannot use; the message names the variable."""


def _str(env: Mapping[str, str], name: str, default: str = "", *fallbacks: str) -> str:
    for key in (name, *fallbacks):
        value = env.get(key)
        if value is not None and value.strip() != "":
            return value.strip()
    return default


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float | None = None) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _str(env, name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _int_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = tuple(int(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated whole numbers, got {raw!r}") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{name} must list at least one non-negative number, got {raw!r}")
    return values


def _llm_providers(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Extra OpenAI-compatible providers: LLM_PROVIDER_<NAME>_BASE_URL / LLM_PROVIDER_<NAME>_API_KEY."""
    providers: dict[str, tuple[str, str]] = {}
    prefix, suffix = "LLM_PROVIDER_", "_BASE_URL"
    for key, value in env.items():
        if key.startswith(prefix) and key.endswith(suffix) and value.strip():
            name = key[len(prefix):-len(suffix)].lower()
            if name:
                api_key = _str(env, f"{prefix}{name.upper()}_API_KEY")
                providers[name] = (value.strip().rstrip("/"), api_key)
    return providers


@dataclass(frozen=True)
class Config:
    # Workflows and engine
    workflows_dir: str = "./workflows"
    workflow_execution: str = "sequential"
    workflow_max_steps: int = 100
    parallel_max_width: int = 8
    llm_max_tokens_cap: int = 16000
    job_max_llm_cost_usd: float = 0.0
    debug_mode: bool = False

    # LLM providers
    openrouter_api_key: str = ""
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openai_api_key: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    llm_default_provider: str = "openrouter"
    llm_http_referer: str = "https://beprepared.ai"
    llm_app_title: str = "BePrepared.ai"
    llm_timeout_seconds: float = 300.0
    llm_extra_providers: dict = field(default_factory=dict)

    # External APIs
    weatherapi_api_key: str = ""
    weatherapi_base_url: str = "https://api.weatherapi.com/v1"
    google_places_api_key: str = ""
    google_places_base_url: str = "https://maps.googleapis.com/maps/api/place"
    external_api_timeout_seconds: float = 30.0
    cache_ttl_default: int = 604800
    rate_limit_global: int = 0
    rate_limit_per_user: int = 0
    rate_limit_window_seconds: int = 3600

    # HTTP helper
    http_pool_size: int = 0  # 0 = sized from worker_concurrency
    http_connect_timeout: float = 10.0
    http_max_response_bytes: int = 10 * 1024 * 1024
    http_user_agent: str = ""

    # Redis, jobs, worker
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""
    celery_queue: str = "celery"
    redis_key_prefix: str = "llm"
    worker_concurrency: int = 10
    job_retention_days: int = 30
    job_heartbeat_seconds: float = 1.0
    job_lease_seconds: float = 30.0
    sweeper_interval_seconds: float = 10.0
    job_max_recoveries: int = 1
    visibility_timeout_seconds: int = 7200
    worker_metrics_port: int = 0

    # API
    api_secret: str = ""
    api_title: str = "LLM Workflow Microservice"
    api_version: str = "1.0.0"
    max_content_length: int = 1024 * 1024
    events_keepalive_seconds: float = 15.0
    events_max_streams: int = 1000
    cors_origins: tuple = ("http://localhost:3000",)
    submit_rate_limit: int = 0
    submit_rate_window_seconds: int = 60

    # Webhooks and email
    webhook_secret: str = ""
    webhook_timeout_seconds: float = 30.0
    webhook_max_retries: int = 3
    webhook_retry_delays: tuple = (5, 15, 45)
    webhook_allow_private_networks: bool = False
    resend_api_key: str = ""
    resend_base_url: str = "https://api.resend.com"
    from_email: str = "noreply@example.com"
    admin_email: str = "admin@example.com"

    log_level: str = "INFO"
    log_format: str = "json"

    @property
    def effective_http_pool_size(self) -> int:
        """The shared Session's pool: one connection per concurrent job slot, plus a little headroom."""
        return self.http_pool_size or max(10, self.worker_concurrency)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    def secrets(self) -> list[str]:
        """Every configured secret value, so logs and errors can be scrubbed of them."""
        values = [
            self.openrouter_api_key, self.openai_api_key, self.weatherapi_api_key, self.google_places_api_key,
            self.api_secret, self.webhook_secret, self.resend_api_key,
        ]
        values += [key for _, key in self.llm_extra_providers.values()]
        values += [_url_password(url) for url in (self.redis_url, self.broker_url)]
        return list(secret_values(values))

    def with_overrides(self, **changes: Any) -> "Config":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        concurrency = _int(env, "WORKER_CONCURRENCY", 10, minimum=1)
        webhook_secret = _str(env, "LLM_WEBHOOK_SECRET")
        return cls(
            workflows_dir=_str(env, "WORKFLOWS_DIR", "./workflows"),
            workflow_execution=_choice(env, "WORKFLOW_EXECUTION", "sequential", ("sequential", "dependencies")),
            workflow_max_steps=_int(env, "WORKFLOW_MAX_STEPS", 100, minimum=1),
            parallel_max_width=_int(env, "PARALLEL_MAX_WIDTH", 8, minimum=1),
            llm_max_tokens_cap=_int(env, "LLM_MAX_TOKENS_CAP", 16000, minimum=1),
            job_max_llm_cost_usd=_float(env, "JOB_MAX_LLM_COST_USD", 0.0, minimum=0.0),
            debug_mode=_bool(env, "DEBUG_MODE", False),
            openrouter_api_key=_str(env, "OPENROUTER_API_KEY"),
            openrouter_base_url=_str(env, "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1").rstrip("/"),
            openai_api_key=_str(env, "OPENAI_API_KEY"),
            openai_base_url=_str(env, "OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/"),
            llm_default_provider=_str(env, "LLM_DEFAULT_PROVIDER", "openrouter").lower(),
            llm_http_referer=_str(env, "LLM_HTTP_REFERER", "https://beprepared.ai"),
            llm_app_title=_str(env, "LLM_APP_TITLE", "BePrepared.ai"),
            llm_timeout_seconds=_float(env, "LLM_TIMEOUT_SECONDS", 300.0, minimum=0.1),
            llm_extra_providers=_llm_providers(env),
            weatherapi_api_key=_str(env, "WEATHERAPI_API_KEY", "", "NEXT_PUBLIC_WEATHERAPI_API_KEY"),
            weatherapi_base_url=_str(env, "WEATHERAPI_BASE_URL", "https://api.weatherapi.com/v1").rstrip("/"),
            google_places_api_key=_str(env, "GOOGLE_PLACES_API_KEY", "", "NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY"),
            google_places_base_url=_str(
                env, "GOOGLE_PLACES_BASE_URL", "https://maps.googleapis.com/maps/api/place").rstrip("/"),
            external_api_timeout_seconds=_float(env, "EXTERNAL_API_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            cache_ttl_default=_int(env, "CACHE_TTL_DEFAULT", 604800, minimum=1),
            rate_limit_global=_int(env, "RATE_LIMIT_GLOBAL", 0, minimum=0),
            rate_limit_per_user=_int(env, "RATE_LIMIT_PER_USER", 0, minimum=0),
            rate_limit_window_seconds=_int(env, "RATE_LIMIT_WINDOW_SECONDS", 3600, minimum=1),
            http_pool_size=_int(env, "HTTP_POOL_SIZE", 0, minimum=0),
            http_connect_timeout=_float(env, "HTTP_CONNECT_TIMEOUT", 10.0, minimum=0.1),
            http_max_response_bytes=_int(env, "HTTP_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, minimum=1024),
            http_user_agent=_str(env, "HTTP_USER_AGENT"),
            redis_url=_str(env, "REDIS_URL", "redis://127.0.0.1:6379/0"),
            broker_url=_str(env, "BROKER_URL"),
            celery_queue=_str(env, "CELERY_QUEUE", "celery"),
            redis_key_prefix=_str(env, "REDIS_KEY_PREFIX", "llm"),
            worker_concurrency=concurrency,
            job_retention_days=_int(env, "JOB_RETENTION_DAYS", 30, minimum=1),
            job_heartbeat_seconds=_float(env, "JOB_HEARTBEAT_SECONDS", 1.0, minimum=0.1),
            job_lease_seconds=_float(env, "JOB_LEASE_SECONDS", 30.0, minimum=1.0),
            sweeper_interval_seconds=_float(env, "SWEEPER_INTERVAL_SECONDS", 10.0, minimum=0.1),
            job_max_recoveries=_int(env, "JOB_MAX_RECOVERIES", 1, minimum=0),
            visibility_timeout_seconds=_int(env, "VISIBILITY_TIMEOUT_SECONDS", 7200, minimum=60),
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", 0, minimum=0),
            api_secret=_str(env, "LLM_API_SECRET", "", "LLM_WEBHOOK_SECRET"),
            api_title=_str(env, "API_TITLE", "LLM Workflow Microservice"),
            api_version=_str(env, "API_VERSION", "1.0.0"),
            max_content_length=_int(env, "MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024),
            events_keepalive_seconds=_float(env, "EVENTS_KEEPALIVE_SECONDS", 15.0, minimum=0.01),
            events_max_streams=_int(env, "EVENTS_MAX_STREAMS", 1000, minimum=1),
            cors_origins=tuple(o.strip() for o in _str(env, "CORS_ORIGINS", "http://localhost:3000").split(",")
                               if o.strip()),
            submit_rate_limit=_int(env, "SUBMIT_RATE_LIMIT", 0, minimum=0),
            submit_rate_window_seconds=_int(env, "SUBMIT_RATE_WINDOW_SECONDS", 60, minimum=1),
            webhook_secret=webhook_secret,
            webhook_timeout_seconds=_float(env, "WEBHOOK_TIMEOUT", 30.0, minimum=0.1),
            webhook_max_retries=_int(env, "WEBHOOK_MAX_RETRIES", 3, minimum=0),
            webhook_retry_delays=_int_list(env, "WEBHOOK_RETRY_DELAYS", (5, 15, 45)),
            webhook_allow_private_networks=_bool(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False),
            resend_api_key=_str(env, "RESEND_API_KEY"),
            resend_base_url=_str(env, "RESEND_BASE_URL", "https://api.resend.com").rstrip("/"),
            from_email=_str(env, "FROM_EMAIL", "noreply@example.com"),
            admin_email=_str(env, "ADMIN_EMAIL", "admin@example.com"),
            log_level=_choice(env, "LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
            log_format=_choice(env, "LOG_FORMAT", "json", ("json", "text")),
        )


def _url_password(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def config_field_names() -> list[str]:
    return [f.name for f in fields(Config)]
