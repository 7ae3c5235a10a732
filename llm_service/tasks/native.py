"""Operating-system threads and locks, also when eventlet or gevent has monkey-patched ``threading``.

A green thread runs only when the event loop gets control back, so work that must happen on time even while a green
thread hogs the CPU (renewing job leases) runs in a real thread. State shared with green threads is then guarded by
a real lock: a green lock waited on from another OS thread would try to switch greenlets across threads. Only the
standard library is used when nothing is patched.
"""
from __future__ import annotations

import sys
from typing import Any, Callable


def _original(module: str, name: str) -> Any:
    if "eventlet.patcher" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("thread"):
            return getattr(patcher.original(module), name)
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        return monkey.get_original(module, name)  # the current attribute when the module was not patched
    return getattr(__import__(module), name)


def native_lock() -> Any:
    """A lock that blocks the OS thread, never switches greenlets (hold it for microseconds only)."""
    return _original("_thread", "allocate_lock")()


def start_native_thread(target: Callable[[], None]) -> None:
    _original("_thread", "start_new_thread")(target, ())


def native_sleep(seconds: float) -> None:
    _original("time", "sleep")(seconds)
