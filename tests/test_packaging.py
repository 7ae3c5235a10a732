"""The Docker files stay runnable: docker-compose's commands are the ones the integration tests run, the image
runs as a non-root user, and every service the README promises is defined. (No Docker engine runs here, so the
files are checked statically.)"""
from __future__ import annotations

import yaml

from tests.integration.stack import base_api_command, base_worker_command
from tests.support import REPO


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_runs_the_tested_commands():
    services = compose()["services"]
    assert services["api"]["command"] == base_api_command()
    assert services["worker"]["command"] == base_worker_command("eventlet", 100)
    assert set(services) >= {"redis", "api", "worker", "flower", "sandbox"}


def test_compose_redis_persists_and_app_services_wait_for_it():
    services = compose()["services"]
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfile_is_slim_non_root_and_serves_the_api():
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "\nUSER app\n" in text
    assert 'CMD ["gunicorn", "wsgi:app"]' in text
    for copied in ("wsgi.py", "worker.py", "gunicorn.conf.py", "workflows", "llm_service"):
        assert copied in text


def test_gunicorn_conf_is_picked_up_without_flags():
    namespace: dict = {}
    exec((REPO / "gunicorn.conf.py").read_text(), namespace)
    assert namespace["worker_class"] == "gevent" and namespace["worker_connections"] >= 100
    assert namespace["bind"].endswith(":8000")
