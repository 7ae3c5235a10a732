"""The Docker files stay runnable: docker-compose's commands are the ones the integration tests run, the image
runs as a non-root user, and every service the README promises is defined. (No Docker engine runs here, so the
files are checked statically.)"""
from __future__ import annotations

import pytest
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


# ---------------------------------------------------------------------------------------------- deployment

def setup_requirements(*extras: str) -> list[str]:
    """What the Dockerfile installs: scripts/requirements-from-setup-cfg, run in-process."""
    namespace: dict = {"__name__": "script"}
    exec((REPO / "scripts" / "requirements-from-setup-cfg").read_text(), namespace)
    return namespace["requirements"](str(REPO / "setup.cfg"), list(extras))


def env_file(name: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / name).read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_compose_has_no_default_secret_and_refuses_to_start_without_one():
    for name in ("api", "worker"):
        assert compose()["services"][name]["environment"]["LLM_API_SECRET"].startswith("${LLM_API_SECRET:?")
    assert "dev-secret" not in (REPO / "docker-compose.yml").read_text()


def test_app_services_restart_and_have_meaningful_healthchecks():
    services = compose()["services"]
    for name in ("api", "worker"):
        assert services[name]["restart"] == "unless-stopped"
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "-m", "llm_service.tasks.healthcheck"]


def test_flower_only_with_monitoring_and_basic_auth():
    flower = compose()["services"]["flower"]
    assert flower["profiles"] == ["monitoring"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"] and "FLOWER_BASIC_AUTH" in " ".join(flower["command"])


def test_sandbox_env_file_wires_every_upstream_to_the_sandbox_with_key_like_values():
    env = env_file(".env.sandbox")
    for name in ("OPENROUTER_BASE_URL", "WEATHERAPI_BASE_URL", "GOOGLE_PLACES_BASE_URL"):
        assert env[name].startswith("http://sandbox:8900/")
    for name in ("OPENROUTER_API_KEY", "WEATHERAPI_API_KEY", "GOOGLE_PLACES_API_KEY", "LLM_API_SECRET"):
        assert len(env[name]) >= 16 and env[name] != "sandbox"
    assert env["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] == "true"
    assert "--env-file .env.sandbox --profile sandbox" in (REPO / "README.md").read_text()
    assert set(env_file(".env.example")) >= {"LLM_API_SECRET", "OPENROUTER_API_KEY", "WEATHERAPI_API_KEY",
                                              "GOOGLE_PLACES_API_KEY"}


def test_image_installs_dependencies_before_the_source_and_leaves_the_venv_out():
    text = (REPO / "Dockerfile").read_text()
    assert text.index("pip install") < text.index("COPY llm_service")
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)
    wanted = setup_requirements("all")
    assert any(line.startswith("celery") for line in wanted) and any(line.startswith("gevent") for line in wanted)


def declared(name: str) -> str:
    from packaging.requirements import Requirement

    for line in setup_requirements():
        if Requirement(line).name == name:
            return line
    raise AssertionError(f"{name} is not declared in setup.cfg install_requires")


@pytest.mark.parametrize("name, patched_by", [("eventlet", "llm_service/tasks/bootstrap.py"),
                                              ("kombu", "llm_service/tasks/transport.py")])
def test_patched_libraries_are_bounded_and_installed_inside_the_tested_range(name, patched_by):
    from importlib.metadata import version

    from packaging.requirements import Requirement

    requirement = Requirement(declared(name))
    assert any(spec.operator in ("<", "<=") for spec in requirement.specifier), f"{name} needs an upper bound"
    installed = version(name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"\n\n*** {name} {installed} is installed, outside {requirement.specifier}: the range {patched_by} was "
        f"tested against. Its patches reach into {name}'s internals; re-run the worker, transport and reliability "
        f"tests against {name} {installed}, then move the bound in setup.cfg. ***\n")


def test_gevent_is_a_runtime_extra():
    for extra in ("gevent", "all"):
        assert any(line.startswith("gevent") for line in setup_requirements(extra))
