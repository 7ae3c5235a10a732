"""Gunicorn settings, read automatically by ``gunicorn wsgi:app`` from the working directory.

Green-thread workers (gevent): most of the API's requests are short, blocking Redis and broker round trips, but a
job's event stream (``/api/v1/jobs/<id>/events``) stays open for the whole job. With a thread per request
(gthread, 16 threads) 32 open streams would leave no thread for anything else; a greenlet per request costs a few
KB, so one process holds hundreds of open streams (each waiting in short blocking Redis reads) while status polls
stay fast (``bench/event_streams.py``). gevent monkey-patches the worker process before the app is loaded, and the
app is synchronous code on ``threading``/sockets, which gevent makes cooperative. ``GUNICORN_WORKER_CLASS=gthread``
brings back the threaded worker (then each open stream takes one of ``GUNICORN_THREADS``). This file is the
server's own configuration, so it reads its few variables from the environment directly:

* ``PORT`` (8000): listen on 0.0.0.0:PORT.
* ``WEB_CONCURRENCY`` (2): worker processes.
* ``GUNICORN_WORKER_CLASS`` (gevent): ``gevent`` or ``gthread``.
* ``GUNICORN_WORKER_CONNECTIONS`` (1000): concurrent requests (open streams included) per gevent process.
* ``GUNICORN_THREADS`` (16): threads per gthread process, i.e. its concurrent requests.
* ``GUNICORN_TIMEOUT`` (60): seconds a worker may be unresponsive before it is restarted.
"""
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = f"0.0.0.0:{_int('PORT', 8000)}"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
workers = _int("WEB_CONCURRENCY", 2)
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
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
