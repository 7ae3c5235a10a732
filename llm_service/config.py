"""All configuration, read from environment variables in this one place.

Every other module receives a :class:`Config` (or values taken from it); nothing else reads ``os.environ``.
Each setting is declared once, as a field of :class:`Config` made by :func:`setting`: its variable, default, parser,
whether it is a secret and its description. ``Config.from_env``, the list of secrets to scrub (``Config.secrets``)
and the README's configuration table (:func:`config_table`, checked by a test) are all derived from those fields.
Regenerate the table with ``python -m llm_service.config``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping

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


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A number above zero, decimals allowed (``JOB_RETENTION_DAYS=0.0001`` keeps jobs about 9 s, for tests)."""
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be above 0, got {value}")
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


Parser = Callable[[Mapping[str, str], str, Any], Any]
"""``parse(env, name, default)``: the value of variable ``name`` (its default when unset or blank)."""


@dataclass(frozen=True)
class Var:
    """How one setting is read from the environment and shown in the README."""
    name: str
    doc: str
    parse: Parser
    fallbacks: tuple[str, ...] = ()
    secret: bool = False         # the value is a secret (scrubbed from logs, results and webhooks)
    url_password: bool = False   # the value is a URL whose password is a secret
    shown_default: str | None = None


def setting(default: Any, name: str, doc: str, *, parse: Parser | None = None, fallbacks: tuple[str, ...] = (),
            secret: bool = False, url_password: bool = False, shown_default: str | None = None) -> Any:
    """A :class:`Config` field read from variable ``name``: one declaration gives its default, its parser (text by
    default), whether it is a secret and its README row."""
    var = Var(name, doc, parse or text(), fallbacks, secret, url_password, shown_default)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"var": var})
    return field(default=default, metadata={"var": var})


def text(*, url: bool = False, case: str | None = None) -> Parser:
    """Stripped text; ``url`` drops a trailing slash; ``case`` "lower"/"upper" folds it."""
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        value = _str(env, name, default)
        if url:
            value = value.rstrip("/")
        return getattr(value, case)() if case else value
    return parse


def whole(minimum: int | None = None) -> Parser:
    return lambda env, name, default: _int(env, name, default, minimum=minimum)


def number(minimum: float | None = None) -> Parser:
    return lambda env, name, default: _float(env, name, default, minimum=minimum)


def above_zero() -> Parser:
    return lambda env, name, default: _positive(env, name, default)


def flag() -> Parser:
    return lambda env, name, default: _bool(env, name, default)


def one_of(*allowed: str, case: str | None = None) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        value = _choice(env, name, default.lower(), allowed)
        return getattr(value, case)() if case else value
    return parse


def whole_list() -> Parser:
    return lambda env, name, default: _int_list(env, name, default)


def comma_list() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = _str(env, name, "")
        return tuple(part.strip() for part in raw.split(",") if part.strip()) if raw else default
    return parse


@dataclass(frozen=True)
class Config:
    # Workflows and engine
    workflows_dir: str = setting("./workflows", "WORKFLOWS_DIR", "root with `definitions/` and `prompts/`")
    workflow_execution: str = setting(
        "sequential", "WORKFLOW_EXECUTION", "default mode for workflows that do not set `execution` "
        "(`dependencies` runs independent steps at once)", parse=one_of("sequential", "dependencies"))
    workflow_max_steps: int = setting(100, "WORKFLOW_MAX_STEPS", "steps per workflow (nested ones included)",
                                      parse=whole(1))
    parallel_max_width: int = setting(8, "PARALLEL_MAX_WIDTH", "children a `parallel` step (or dependency "
                                      "execution) runs at once", parse=whole(1))
    llm_max_tokens_cap: int = setting(16000, "LLM_MAX_TOKENS_CAP", "`max_tokens` sent upstream is clamped to this",
                                      parse=whole(1))
    job_max_llm_cost_usd: float = setting(0.0, "JOB_MAX_LLM_COST_USD", "an LLM step is refused once a job has "
                                          "spent this much", parse=number(0.0), shown_default="0 (no cap)")
    debug_mode: bool = setting(False, "DEBUG_MODE", "a failing step's stack trace (redacted) goes to the worker's "
                               "log (never into results, the API or webhooks)", parse=flag())

    # LLM providers
    openrouter_api_key: str = setting("", "OPENROUTER_API_KEY", "LLM calls through OpenRouter (the default "
                                      "provider)", secret=True)
    openrouter_base_url: str = setting("https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL", "OpenRouter's API",
                                       parse=text(url=True))
    openai_api_key: str = setting("", "OPENAI_API_KEY", "provider `openai`", secret=True)
    openai_base_url: str = setting("https://api.openai.com/v1", "OPENAI_BASE_URL", "provider `openai`",
                                   parse=text(url=True))
    llm_default_provider: str = setting("openrouter", "LLM_DEFAULT_PROVIDER", "provider for steps that do not name "
                                        "one", parse=text(case="lower"))
    llm_http_referer: str = setting("https://beprepared.ai", "LLM_HTTP_REFERER", "OpenRouter attribution header")
    llm_app_title: str = setting("BePrepared.ai", "LLM_APP_TITLE", "OpenRouter attribution header")
    llm_timeout_seconds: float = setting(300.0, "LLM_TIMEOUT_SECONDS", "LLM request timeout unless the step sets "
                                         "`timeout` (always clipped to the workflow's time left)",
                                         parse=number(0.1))
    # LLM_PROVIDER_<NAME>_BASE_URL / _API_KEY: read by _llm_providers, documented by EXTRA_ROWS
    llm_extra_providers: dict = field(default_factory=dict)

    # External APIs
    weatherapi_api_key: str = setting("", "WEATHERAPI_API_KEY", "WeatherAPI calls",
                                      fallbacks=("NEXT_PUBLIC_WEATHERAPI_API_KEY",), secret=True)
    weatherapi_base_url: str = setting("https://api.weatherapi.com/v1", "WEATHERAPI_BASE_URL", "WeatherAPI's API",
                                       parse=text(url=True))
    google_places_api_key: str = setting("", "GOOGLE_PLACES_API_KEY", "Google Places calls",
                                         fallbacks=("NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY",), secret=True)
    google_places_base_url: str = setting("https://maps.googleapis.com/maps/api/place", "GOOGLE_PLACES_BASE_URL",
                                          "Google Places' API", parse=text(url=True))
    external_api_timeout_seconds: float = setting(30.0, "EXTERNAL_API_TIMEOUT_SECONDS", "external API request "
                                                  "timeout (clipped to the time left)", parse=number(0.1))
    cache_ttl_default: int = setting(604800, "CACHE_TTL_DEFAULT", "cache TTL for steps without `cache_ttl`",
                                     parse=whole(1))
    rate_limit_global: int = setting(0, "RATE_LIMIT_GLOBAL", "upstream calls per service per window",
                                     parse=whole(0), shown_default="0 (no limit)")
    rate_limit_per_user: int = setting(0, "RATE_LIMIT_PER_USER", "upstream calls per `input_data.user_id` per "
                                       "window", parse=whole(0), shown_default="0 (no limit)")
    rate_limit_window_seconds: int = setting(3600, "RATE_LIMIT_WINDOW_SECONDS", "sliding window of those limits",
                                             parse=whole(1))

    # HTTP helper
    http_pool_size: int = setting(0, "HTTP_POOL_SIZE", "connections of the shared Session per upstream host",
                                  parse=whole(0), shown_default="0 (= max(10, worker concurrency))")
    http_connect_timeout: float = setting(10.0, "HTTP_CONNECT_TIMEOUT", "seconds", parse=number(0.1))
    http_max_response_bytes: int = setting(10 * 1024 * 1024, "HTTP_MAX_RESPONSE_BYTES", "larger upstream bodies "
                                           "are refused", parse=whole(1024))
    http_user_agent: str = setting("", "HTTP_USER_AGENT", "User-Agent of upstream requests",
                                   shown_default="llm-service/<version>")

    # Redis, jobs, worker
    redis_url: str = setting("redis://127.0.0.1:6379/0", "REDIS_URL", "job store, cache, rate limits, and the "
                             "broker", url_password=True)
    broker_url: str = setting("", "BROKER_URL", "Celery broker, if different", url_password=True,
                              shown_default="REDIS_URL")
    celery_queue: str = setting("celery", "CELERY_QUEUE", "queue name (one per deployment sharing a Redis)")
    redis_key_prefix: str = setting("llm", "REDIS_KEY_PREFIX", "prefix of every key the service writes")
    worker_concurrency: int = setting(10, "WORKER_CONCURRENCY", "sizes pools when the worker is started without "
                                      "`--concurrency`", parse=whole(1))
    job_retention_days: float = setting(30.0, "JOB_RETENTION_DAYS", "jobs older than this are purged (decimals "
                                        "allowed: `0.0001` is about 9 s; keep it above the longest job's run time)",
                                        parse=above_zero())
    job_purge_interval_seconds: float = setting(300.0, "JOB_PURGE_INTERVAL_SECONDS", "how often one worker (under "
                                                "a lock) purges expired jobs from the store and every index",
                                                parse=number(0.1))
    job_heartbeat_seconds: float = setting(1.0, "JOB_HEARTBEAT_SECONDS", "how often a running job's lease is "
                                           "renewed (and cancel flags checked)", parse=number(0.1))
    job_lease_seconds: float = setting(10.0, "JOB_LEASE_SECONDS", "a running job's lease: a job whose worker "
                                       "stopped renewing it for this long is recovered", parse=number(1.0))
    sweeper_interval_seconds: float = setting(2.0, "SWEEPER_INTERVAL_SECONDS", "how often a worker looks for jobs "
                                              "whose worker died", parse=number(0.1))
    queued_republish_seconds: float = setting(30.0, "QUEUED_REPUBLISH_SECONDS", "a queued job whose broker message "
                                              "is gone (lost, or taken by a worker that died before claiming it) is "
                                              "published again after this", parse=number(1.0))
    user_max_concurrent_jobs: int = setting(0, "USER_MAX_CONCURRENT_JOBS", "at most this many jobs of one "
                                            "`user_id` run at once; the others wait `queued` without holding a "
                                            "worker slot", parse=whole(0), shown_default="0 (off)")
    job_max_recoveries: int = setting(1, "JOB_MAX_RECOVERIES", "re-runs of a job whose worker died, before it "
                                      "fails with `WorkerLost`", parse=whole(0))
    visibility_timeout_seconds: int = setting(7200, "VISIBILITY_TIMEOUT_SECONDS", "broker redelivery timeout "
                                              "(longer than the longest workflow)", parse=whole(60))
    worker_metrics_port: int = setting(0, "WORKER_METRICS_PORT", "serve the worker's Prometheus metrics on this "
                                       "port", parse=whole(0), shown_default="0 (off)")
    prometheus_multiproc_dir: str = setting(
        "", "PROMETHEUS_MULTIPROC_DIR", "where the API's gunicorn processes keep metric values so `/metrics` sums "
        "them; emptied at server start", shown_default="<tmp>/llm-service-metrics-<PORT> (set by gunicorn.conf.py)")
    worker_heartbeat_ttl_seconds: float = setting(
        15.0, "WORKER_HEARTBEAT_TTL_SECONDS", "workers refresh a heartbeat key every third of this; `/health` and "
        "the worker container's healthcheck count a worker as gone once it lapses (at least 1.5)",
        parse=number(1.5))

    # API
    api_secret: str = setting("", "LLM_API_SECRET", "value of the `X-API-Secret` header; unset: protected "
                              "endpoints answer 503", fallbacks=("LLM_WEBHOOK_SECRET",), secret=True)
    api_title: str = setting("LLM Workflow Microservice", "API_TITLE", "`GET /` and the webhook User-Agent")
    api_version: str = setting("1.0.0", "API_VERSION", "`GET /` and the webhook User-Agent")
    max_content_length: int = setting(1024 * 1024, "MAX_CONTENT_LENGTH", "larger request bodies get 413",
                                      parse=whole(1024))
    events_keepalive_seconds: float = setting(15.0, "EVENTS_KEEPALIVE_SECONDS", "an idle job event stream "
                                              "(`/jobs/<id>/events`) sends a keep-alive comment this often",
                                              parse=number(0.01))
    events_max_streams: int = setting(1000, "EVENTS_MAX_STREAMS", "Redis connections one API process keeps for "
                                      "open event streams (each open stream holds one)", parse=whole(1))
    cors_origins: tuple = setting(("http://localhost:3000",), "CORS_ORIGINS", "allowed browser origins, "
                                  "comma-separated", parse=comma_list())
    submit_rate_limit: int = setting(0, "SUBMIT_RATE_LIMIT", "submissions per API key per window (429 + "
                                     "`Retry-After`)", parse=whole(0), shown_default="0 (off)")
    submit_rate_window_seconds: int = setting(60, "SUBMIT_RATE_WINDOW_SECONDS", "the window of `SUBMIT_RATE_LIMIT`",
                                              parse=whole(1))
    idempotency_ttl_seconds: int = setting(86400, "IDEMPOTENCY_TTL_SECONDS", "how long an `Idempotency-Key` of "
                                           "`POST /api/v1/workflow` is remembered", parse=whole(1))

    # Webhooks and email
    webhook_secret: str = setting("", "LLM_WEBHOOK_SECRET", "signs webhooks (a job's own `webhook_secret` wins)",
                                  secret=True)
    webhook_timeout_seconds: float = setting(30.0, "WEBHOOK_TIMEOUT", "seconds per delivery attempt",
                                             parse=number(0.1))
    webhook_max_retries: int = setting(3, "WEBHOOK_MAX_RETRIES", "delivery attempts after the first",
                                       parse=whole(0))
    webhook_retry_delays: tuple = setting((5, 15, 45), "WEBHOOK_RETRY_DELAYS", "the waits before those attempts "
                                          "(seconds, comma-separated; the last repeats)", parse=whole_list())
    webhook_allow_private_networks: bool = setting(False, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "allow webhook URLs "
                                                   "on private/loopback addresses (local development)",
                                                   parse=flag())
    resend_api_key: str = setting("", "RESEND_API_KEY", "e-mail the admin when a webhook permanently fails",
                                  secret=True)
    resend_base_url: str = setting("https://api.resend.com", "RESEND_BASE_URL", "Resend's API",
                                   parse=text(url=True))
    from_email: str = setting("noreply@example.com", "FROM_EMAIL", "sender of those e-mails")
    admin_email: str = setting("admin@example.com", "ADMIN_EMAIL", "recipient of those e-mails")

    log_level: str = setting("INFO", "LOG_LEVEL", "logs go to stderr",
                             parse=one_of("debug", "info", "warning", "error", case="upper"))
    log_format: str = setting("json", "LOG_FORMAT", "`json`, or `text` for humans", parse=one_of("json", "text"))

    @property
    def effective_http_pool_size(self) -> int:
        """The shared Session's pool: one connection per concurrent job slot, plus a little headroom."""
        return self.http_pool_size or max(10, self.worker_concurrency)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    def secrets(self) -> list[str]:
        """Every configured secret value, so logs and errors can be scrubbed of them."""
        values: list[str] = []
        for item, var in _declared():
            value = getattr(self, item.name)
            if var.secret:
                values.append(value)
            elif var.url_password:
                values.append(_url_password(value))
        values += [key for _, key in self.llm_extra_providers.values()]
        return list(secret_values(values))

    def with_overrides(self, **changes: Any) -> "Config":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        values = {item.name: var.parse(env, _first_set(env, var), item.default) for item, var in _declared()}
        return cls(**values, llm_extra_providers=_llm_providers(env))


def _declared() -> list[tuple[Any, Var]]:
    """The fields declared with :func:`setting`, with their variables, in declaration order."""
    return [(item, item.metadata["var"]) for item in fields(Config) if "var" in item.metadata]


def _first_set(env: Mapping[str, str], var: Var) -> str:
    """The variable's name, or the first of its fallbacks that is set (old names still work)."""
    for name in (var.name, *var.fallbacks):
        value = env.get(name)
        if value is not None and value.strip():
            return name
    return var.name


# Rows for variables that are not one Config field each: a family of variables, and the API server's own settings
# (gunicorn reads them in gunicorn.conf.py, before any of this package is imported).
EXTRA_ROWS = (
    ("`LLM_PROVIDER_<NAME>_BASE_URL` / `_API_KEY`", "—",
     "any other OpenAI-compatible provider, used with `\"provider\": \"<name>\"` (the key is a secret)"),
    ("`PORT`, `WEB_CONCURRENCY`, `GUNICORN_TIMEOUT`", "`8000`, `2`, `60`",
     "the API server (read by `gunicorn.conf.py`)"),
    ("`GUNICORN_WORKER_CLASS` / `GUNICORN_WORKER_CONNECTIONS`", "`gevent` / `1000`",
     "the API's worker class (a greenlet per request, so open event streams do not take a thread each) and its "
     "concurrent requests per process; `gthread` brings back the threaded worker"),
    ("`GUNICORN_THREADS`", "`16`", "threads per process with `GUNICORN_WORKER_CLASS=gthread`"),
)


def _shown(value: Any, var: Var) -> str:
    if var.shown_default is not None:
        return f"`{var.shown_default}`" if not var.shown_default[:1].isdigit() else var.shown_default
    if value in ("", None):
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(str(v) for v in value)}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def config_table() -> str:
    """The README's configuration table, generated from the declarations above (a test keeps them equal)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for item, var in _declared():
        doc = var.doc
        if var.fallbacks:
            doc += " (falls back to " + ", ".join(f"`{name}`" for name in var.fallbacks) + ")"
        if var.secret:
            doc += "; a secret: scrubbed from logs, results and webhooks"
        rows.append(f"| `{var.name}` | {_shown(item.default, var)} | {doc} |")
    rows += [f"| {name} | {default} | {doc} |" for name, default, doc in EXTRA_ROWS]
    return "\n".join(rows) + "\n"


def _url_password(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def config_field_names() -> list[str]:
    return [f.name for f in fields(Config)]


if __name__ == "__main__":  # python -m llm_service.config: print the README's configuration table
    print(config_table(), end="")
