"""Reading the worker's command line before anything else is imported.

``worker.py`` must monkey-patch for eventlet/gevent before any other import (late patching left RLocks un-greened
in the old service), so this module imports nothing but the standard library.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

GREEN_POOLS = ("eventlet", "gevent")


def _option(argv: Sequence[str], short: str, long: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg in (short, long) and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
        if arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            return arg[len(short):]
    return None


_GLOBAL_OPTIONS_WITH_VALUE = ("-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config",
                              "--workdir")


def celery_command(argv: Sequence[str]) -> str | None:
    """The celery sub-command (``worker``, ``inspect``...) in ``celery -A worker worker ...``, if any."""
    args = list(argv[1:])
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            index += 2
            continue
        if arg.startswith("-"):
            index += 1
            continue
        return arg
    return None


def is_worker_command(argv: Sequence[str]) -> bool:
    """True for ``celery -A worker worker ...``; false for ``inspect``, ``purge`` or an import from the API."""
    program = argv[0].replace("\\", "/") if argv else ""
    is_celery = os.path.basename(program).startswith("celery") or program.endswith("celery/__main__.py")
    return is_celery and celery_command(argv) == "worker"


def pool_from_argv(argv: Sequence[str]) -> str:
    return (_option(argv, "-P", "--pool") or "prefork").lower()


def concurrency_from_argv(argv: Sequence[str]) -> int | None:
    value = _option(argv, "-c", "--concurrency")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def monkey_patch_for(argv: Sequence[str]) -> str | None:
    """Patch the standard library for the green pool named on the command line; return the pool patched."""
    if not is_worker_command(argv):
        return None
    pool = pool_from_argv(argv)
    if pool == "eventlet":
        import eventlet

        eventlet.monkey_patch()
        drop_listener_on_refused_descriptor()
        return pool
    if pool == "gevent":
        from gevent import monkey

        monkey.patch_all()
        return pool
    return None


def drop_listener_on_refused_descriptor() -> None:
    """Make eventlet's hub forget a listener whose descriptor epoll refused (idempotent).

    ``Hub.add`` records the listener first and registers the descriptor second; when the descriptor was closed
    meanwhile (EBADF), the error propagates but the listener stays. That happens when Redis goes away while jobs
    run: kombu's poller selects on its sockets, one is already closed, and kombu then probes each descriptor again,
    which collides with the leaked listener ("Second simultaneous read on fileno N"). Celery treats that as
    unrecoverable and the worker exits instead of reconnecting. Removing the listener before re-raising lets kombu
    see the plain EBADF it handles.
    """
    from eventlet import hubs

    hub_class = type(hubs.get_hub())
    original = hub_class.add
    if getattr(original, "_drops_refused_listener", False):
        return

    def add(self: Any, evtype: str, fileno: int, cb: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, evtype, fileno, cb, *args, **kwargs)
        except OSError:
            primary = self.listeners[evtype].get(fileno)
            candidates = [primary, *self.secondaries[evtype].get(fileno, ())]
            for listener in candidates:
                if listener is not None and listener.cb is cb:
                    self.remove(listener)
                    break
            raise

    add._drops_refused_listener = True  # type: ignore[attr-defined]
    hub_class.add = add
