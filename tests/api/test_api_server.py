"""The process entry points: ``gunicorn.conf.py``, ``wsgi.py`` and the default (Celery) queue."""
from __future__ import annotations

import logging
import logging.config
import os
import re
import subprocess
import time
import runpy
import sys
import uuid

import pytest

from llm_service.api import _default_queue
from llm_service.api.queueing import UnavailableQueue
from llm_service.config import Config
from llm_service.jobs.queue import QueueUnavailable
from tests.support import REPO


def load_gunicorn_conf(monkeypatch, **env: str) -> dict:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_WORKER_CLASS",
                 "GUNICORN_WORKER_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch):
    conf = load_gunicorn_conf(monkeypatch)
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["worker_class"] == "gevent"  # open event streams must not take a thread each
    assert (conf["workers"], conf["worker_connections"], conf["threads"]) == (2, 1000, 16)
    assert conf["timeout"] > 0 and conf["graceful_timeout"] > 0
    assert conf["errorlog"] == "-" and conf["accesslog"] == "-"


def test_gunicorn_settings_from_the_environment(monkeypatch):
    conf = load_gunicorn_conf(monkeypatch, PORT="10000", WEB_CONCURRENCY="4", GUNICORN_THREADS="32",
                              GUNICORN_TIMEOUT="90", GUNICORN_WORKER_CLASS="gthread",
                              GUNICORN_WORKER_CONNECTIONS="500")
    assert conf["bind"] == "0.0.0.0:10000" and conf["worker_class"] == "gthread"
    assert (conf["workers"], conf["threads"], conf["timeout"], conf["worker_connections"]) == (4, 32, 90, 500)


def test_gunicorn_access_log_goes_to_stderr(monkeypatch):
    conf = load_gunicorn_conf(monkeypatch)
    handlers = conf["logconfig_dict"]["handlers"]
    access = conf["logconfig_dict"]["loggers"]["gunicorn.access"]
    assert [handlers[name]["stream"] for name in access["handlers"]] == ["ext://sys.stderr"]
    saved = logging.getLogger("gunicorn.access").handlers[:]
    try:
        logging.config.dictConfig(conf["logconfig_dict"])  # the dict is accepted by logging
        handler = logging.getLogger("gunicorn.access").handlers[0]
        assert handler.stream is sys.stderr
    finally:
        logging.getLogger("gunicorn.access").handlers[:] = saved


def _access_line(logger_class, access_log_format: str, environ: dict) -> str:
    """The access line ``logger_class`` writes for one request, with gunicorn's own config object."""
    import io
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config as GunicornConfig

    cfg = GunicornConfig()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_log_format)
    logger = logger_class(cfg)
    stream = io.StringIO()
    logger.access_log.handlers = [logging.StreamHandler(stream)]
    logger.access_log.propagate = False
    response = SimpleNamespace(status="202 ACCEPTED", sent=261, headers=[("Location", "/api/v1/status/x")])
    request = SimpleNamespace(headers=[("X-REQUEST-ID", 'r-"1"'), ("USER-AGENT", 'curl "8"')])
    logger.access(response, request, environ, timedelta(seconds=1, microseconds=2345))
    return stream.getvalue()


@pytest.mark.parametrize("access_log_format", [None, '%(h)s %(l)s "%(r)s" %(s)s %({x-request-id}i)s %(p)s'])
def test_gunicorn_access_lines_are_gunicorns_own(monkeypatch, access_log_format):
    """The access logger builds only the atoms the format names; the line is the one gunicorn's logger writes
    (quotes escaped, missing values as '-'), and a format with other atoms is gunicorn's own."""
    from gunicorn.glogging import Logger

    conf = load_gunicorn_conf(monkeypatch)
    fmt = access_log_format or conf["access_log_format"]
    environ = {"REMOTE_ADDR": "10.1.2.3", "REQUEST_METHOD": "POST", "RAW_URI": "/api/v1/workflow?a=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/api/v1/workflow", "QUERY_STRING": "a=1",
               "HTTP_USER_AGENT": 'curl "8"'}
    ours = _access_line(conf["logger_class"], fmt, environ)
    assert ours == _access_line(Logger, fmt, environ)
    if access_log_format is None:
        assert ours == '10.1.2.3 "POST /api/v1/workflow?a=1 HTTP/1.1" 202 261 1002345us "curl \\"8\\""\n'
    del environ["HTTP_USER_AGENT"], environ["REMOTE_ADDR"]
    assert _access_line(conf["logger_class"], fmt, environ) == _access_line(Logger, fmt, environ)


def test_wsgi_builds_the_app_from_the_environment(monkeypatch, prefix):
    monkeypatch.setenv("LLM_API_SECRET", "wsgi-secret-0123456789")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("API_TITLE", "From Env")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        app = runpy.run_path(str(REPO / "wsgi.py"))["app"]
        client = app.test_client()
        assert client.get("/").get_json()["service"] == "From Env"
        response = client.get("/api/v1/jobs", headers={"X-API-Secret": "wsgi-secret-0123456789"})
        assert response.status_code == 200
        app.extensions["llm_service"].services.close()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_default_queue_without_the_celery_side_refuses_to_publish(monkeypatch):
    monkeypatch.setitem(sys.modules, "llm_service.tasks.queue", None)  # makes the import fail
    queue = _default_queue(Config())
    assert isinstance(queue, UnavailableQueue)
    with pytest.raises(QueueUnavailable):
        queue.enqueue(str(uuid.uuid4()), priority=0)
    with pytest.raises(QueueUnavailable):
        queue.enqueue_webhook(str(uuid.uuid4()), "workflow.cancelled")
    assert queue.workers() is None and queue.revoke(str(uuid.uuid4())) is None


def test_default_queue_is_the_celery_queue_when_available():
    pytest.importorskip("llm_service.tasks.queue")
    from llm_service.tasks.queue import CeleryJobQueue

    assert isinstance(_default_queue(Config()), CeleryJobQueue)


# ---------------------------------------------------------------------------------------------- metrics under gunicorn

def _root_requests(metrics_text: str) -> float:
    found = re.search(r'^llm_api_requests_total\{endpoint="meta.root",method="GET",status="200"\} (\S+)$',
                      metrics_text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_are_summed_over_two_gunicorn_processes(tmp_path, prefix):
    """Worker processes each count their own requests; every scrape must report the sum (multiprocess mode),
    where before scrapes alternated between the processes' own counts. ``--max-requests`` replaces workers while
    the requests arrive, so several processes (also dead ones) hold part of the count whichever one accepts."""
    import requests

    from tests.integration.stack import api_command, free_port

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale from the last deployment")
    port = free_port()
    command = [part for part in api_command(port) if part not in ("--workers", "1")] + ["--workers", "2", "--max-requests", "15"]
    # gthread: it recycles a worker right after its 15th request, so the count is certainly spread over processes
    # (a gevent worker keeps accepting for up to a second after); summing does not depend on the worker class.
    env = {**os.environ, "LLM_API_SECRET": "metrics-secret-0123456789", "REDIS_URL": "redis://127.0.0.1:6379/15",
           "REDIS_KEY_PREFIX": prefix, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_LEVEL": "warning",
           "GUNICORN_WORKER_CLASS": "gthread"}
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start 2 workers"
            time.sleep(0.1)
        for _ in range(40):
            assert requests.get(url + "/", headers={"Connection": "close"}, timeout=5).status_code == 200
        scrapes = [_root_requests(requests.get(url + "/metrics", headers={"Connection": "close"}, timeout=5).text)
                   for _ in range(6)]
        assert scrapes == [40.0] * len(scrapes)
        assert not (metrics_dir / "counter_99999.db").exists()  # cleared at start
        pids = {path.stem.split("_")[-1] for path in metrics_dir.glob("counter_*.db")}
        assert len(pids) >= 2  # the count really was spread over processes
    finally:
        server.terminate()
        server.wait(15)


def _answers(url: str) -> bool:
    import requests

    try:
        requests.get(url + "/health", timeout=1)
        return True
    except requests.RequestException:
        return False
