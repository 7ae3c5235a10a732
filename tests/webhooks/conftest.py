"""Fixtures for the webhook tests: the real HTTP helper and a configuration."""
from __future__ import annotations

import pytest

from llm_service.config import Config
from webhook_support import GLOBAL_SECRET


@pytest.fixture
def http():
    """The project's HTTP helper; private networks allowed so `responses` URLs are never refused."""
    from llm_service.http.client import HttpClient

    return HttpClient(pool_size=4, user_agent="test", allow_private_networks=True)


@pytest.fixture
def config() -> Config:
    return Config(webhook_secret=GLOBAL_SECRET, webhook_timeout_seconds=5.0, webhook_retry_delays=(5, 15, 45),
                  webhook_max_retries=3, api_title="LLM Workflow Microservice", api_version="1.0.0",
                  resend_api_key="re_test_key_123456", resend_base_url="https://resend.example.test",
                  from_email="noreply@example.test", admin_email="admin@example.test")
