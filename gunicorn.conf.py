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
* ``GUNICORN_TIMEOUT`` (60): seconds a request may take before its worker is restarted.
* ``PROMETHEUS_MULTIPROC_DIR`` (``<tmp>/llm-service-metrics-<PORT>``): where the worker processes keep their metric
  values, so that every ``/metrics`` scrape reports the sum over all processes (prometheus_client's multiprocess
  mode). Emptied when the server starts (counters start from zero with each deployment, as Prometheus expects after
  a restart); ``child_exit`` marks a dead process's files so its live gauges stop counting.

The access log (one line per request on stderr, ``access_log_format``) is written by ``AccessLogger``, which builds
only the values the format names; the lines are gunicorn's own.
"""
import glob
import os
import re
import tempfile
from datetime import timedelta

from gunicorn.glogging import Logger


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


class AccessLogger(Logger):
    """gunicorn's logger, except that the access line's atoms are built only for the names the format uses.

    gunicorn builds every atom for every request (the request's and the response's headers, each WSGI environ key,
    a ``strftime`` of the time: about 60 entries, each then copied and quote-escaped by ``SafeAtoms``) and the format
    reads six of them: 21 µs per line instead of 11 (measured in-process). With a format naming only the atoms
    below, the line is the same, built from the same values; any other format (e.g. one that names a header, as
    ``%({x-request-id}i)s``) is left to gunicorn's own ``atoms``. (gunicorn picks its statsd logger by itself only
    while ``logger_class`` is its default; this service configures no statsd.)
    """

    SIMPLE = {
        "h": lambda resp, environ, took: environ.get("REMOTE_ADDR", "-"),
        "r": lambda resp, environ, took: "%s %s %s" % (environ["REQUEST_METHOD"], environ["RAW_URI"],
                                                         environ["SERVER_PROTOCOL"]),
        "s": lambda resp, environ, took: (resp.status.split(None, 1)[0] if isinstance(resp.status, str)
                                          else resp.status),
        "b": lambda resp, environ, took: getattr(resp, "sent", None) is not None and str(resp.sent) or "-",
        "D": lambda resp, environ, took: took.seconds * 1000000 + took.microseconds,
        "a": lambda resp, environ, took: environ.get("HTTP_USER_AGENT", "-"),
    }
    _names: dict[str, tuple[str, ...] | None] = {}

    def atoms(self, resp, req, environ, request_time: timedelta) -> dict:
        fmt = self.cfg.access_log_format
        names = self._names.get(fmt, ())
        if names == ():
            found = tuple(dict.fromkeys(re.findall(r"%\(([^)]*)\)", fmt)))
            names = self._names[fmt] = found if all(name in self.SIMPLE for name in found) else None
        if names is None:
            return super().atoms(resp, req, environ, request_time)
        return {name: self.SIMPLE[name](resp, environ, request_time) for name in names}


logger_class = AccessLogger
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off the (possibly slow, overlay) disk in containers


def on_starting(server) -> None:
    """Runs once in the master before any worker is forked (and before the app is imported), so every worker
    imports prometheus_client with the multiprocess directory already set."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or os.path.join(
        tempfile.gettempdir(), f"llm-service-metrics-{_int('PORT', 8000)}")
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):  # the contents only: the directory may be a mount
        os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
