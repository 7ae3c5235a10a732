"""Gunicorn settings, read automatically by ``gunicorn wsgi:app`` from the working directory.

Threaded workers (gthread): the API's work is short, blocking Redis and broker round trips, so a few processes with
many threads each serve many concurrent clients without green-thread monkey-patching. This file is the server's own
configuration, so it reads its few variables from the environment directly:

* ``PORT`` (8000): listen on 0.0.0.0:PORT.
* ``WEB_CONCURRENCY`` (2): worker processes.
* ``GUNICORN_THREADS`` (16): threads per worker, i.e. concurrent requests per process.
* ``GUNICORN_TIMEOUT`` (60): seconds a request may take before its worker is restarted.
"""
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = f"0.0.0.0:{_int('PORT', 8000)}"
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("GUNICORN_THREADS", 16)
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
backlog = 2048
errorlog = "-"  # stderr
accesslog = "-"  # enables the access log; logconfig_dict below sends it to stderr as well (not stdout)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus "%(a)s"'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},  # the app installs its own JSON handler (wsgi.py)
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "server", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "server": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                   "datefmt": "[%Y-%m-%d %H:%M:%S %z]"},
        "access": {"format": "%(message)s"},
    },
}
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off the (possibly slow, overlay) disk in containers
