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
