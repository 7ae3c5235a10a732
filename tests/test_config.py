"""Config values added for deployment: decimal retention (so the purge can be exercised in seconds), heartbeat TTL."""
from __future__ import annotations

import pytest

from llm_service.config import Config, ConfigError


def test_retention_days_accepts_decimals_and_rejects_zero():
    assert Config.from_env({"JOB_RETENTION_DAYS": "0.0001"}).job_retention_days == 0.0001
    assert Config.from_env({}).job_retention_days == 30
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match="JOB_RETENTION_DAYS"):
            Config.from_env({"JOB_RETENTION_DAYS": bad})


def test_heartbeat_ttl_and_purge_interval_are_read():
    config = Config.from_env({"WORKER_HEARTBEAT_TTL_SECONDS": "2.5", "JOB_PURGE_INTERVAL_SECONDS": "60"})
    assert (config.worker_heartbeat_ttl_seconds, config.job_purge_interval_seconds) == (2.5, 60.0)


# --------------------------------------------------------------------------------------------------------------
# Each setting is declared once: from_env, the secrets list and the README table come from that declaration.

def test_the_readme_configuration_table_is_the_generated_one():
    from llm_service.config import config_table
    from tests.support import REPO

    readme = (REPO / "README.md").read_text()
    start = readme.index("| variable | default | meaning |")
    end = readme.index("<!-- /config-table -->")
    assert readme[start:end] == config_table(), (
        "README.md's configuration table differs from the settings declared in llm_service/config.py: "
        "regenerate it with `python -m llm_service.config`")


def test_defaults_from_an_empty_environment_are_the_declared_ones():
    assert Config.from_env({}) == Config()


def test_every_variable_declared_secret_is_scrubbed_and_no_other():
    from dataclasses import fields

    secret = {f.metadata["var"].name: f.name for f in fields(Config)
              if "var" in f.metadata and f.metadata["var"].secret}
    assert {"OPENROUTER_API_KEY", "WEATHERAPI_API_KEY", "GOOGLE_PLACES_API_KEY", "LLM_API_SECRET",
            "LLM_WEBHOOK_SECRET", "RESEND_API_KEY", "OPENAI_API_KEY"} == set(secret)
    env = {name: f"value-of-{name.lower()}" for name in secret}
    env.update(REDIS_URL="redis://:redis-password-123@redis:6379/0", LLM_PROVIDER_ACME_BASE_URL="https://acme.test",
               LLM_PROVIDER_ACME_API_KEY="acme-key-0123456", API_TITLE="not-a-secret-title")
    found = set(Config.from_env(env).secrets())
    assert found == {env[name] for name in secret} | {"redis-password-123", "acme-key-0123456"}
