"""Renews the leases of a worker's running jobs from an operating-system thread.

The maintenance loop is a green thread under the eventlet and gevent pools: while a step hogs the CPU (a large
transform, parsing a huge response) it does not run, and with leases of a few seconds a busy but healthy worker
would lose them and see its jobs re-run elsewhere. This thread keeps renewing them regardless, through its own
Redis connection (a connection's socket must not be shared between OS threads). It only extends leases: noticing a
lost lease or a cancel request, which touches the jobs' green-side state, stays with the maintenance loop.
"""
from __future__ import annotations

import logging
from typing import Callable

from ..jobs import JobStore, StoreUnavailable
from .native import native_sleep, start_native_thread

log = logging.getLogger("llm_service.worker")


class LeaseKeeper:
    def __init__(self, make_store: Callable[[], JobStore], tokens: Callable[[], dict[str, str]], *,
                 lease_seconds: float, interval: float) -> None:
        """``make_store`` is called in the new thread; ``tokens`` must be safe to call from it (a native lock)."""
        self._make_store, self._tokens = make_store, tokens
        self.lease_seconds, self.interval = lease_seconds, interval
        self._stopped = False

    def start(self) -> None:
        start_native_thread(self._run)

    def stop(self) -> None:
        self._stopped = True

    def _run(self) -> None:
        store = self._make_store()
        while not self._stopped:
            self.renew(store)
            native_sleep(self.interval)

    def renew(self, store: JobStore) -> None:
        tokens = self._tokens()
        if not tokens:
            return
        try:
            store.heartbeat(tokens, lease_seconds=self.lease_seconds)
        except StoreUnavailable:
            pass  # the maintenance loop notices the outage and holds the sweeper back
        except Exception:
            log.warning("lease renewal failed", exc_info=True)
