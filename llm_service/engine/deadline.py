"""The workflow deadline, enforced by the engine itself.

Celery does not enforce time limits under eventlet, so the engine owns them: every upstream call gets
``min(its own timeout, time left)`` and nothing starts after the deadline. Waiting (retry backoff) is done in short
slices so cancellation is noticed promptly.
"""
from __future__ import annotations

from .errors import WorkflowCancelled, WorkflowTimeout
from .ports import CancelToken, Clock

POLL_SECONDS = 0.1


class Deadline:
    def __init__(self, clock: Clock, seconds: float, *, label: str = "Workflow") -> None:
        self.clock = clock
        self.seconds = seconds
        self.label = label
        self.expires_at = clock.monotonic() + seconds

    def remaining(self) -> float:
        return self.expires_at - self.clock.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, where: str = "") -> None:
        if self.expired():
            suffix = f" {where}" if where else ""
            raise WorkflowTimeout(f"{self.label} exceeded timeout ({self.seconds:g}s){suffix}")

    def timeout_for(self, own: float | None) -> float:
        """The budget for one upstream call: its own timeout, clipped to the time the workflow has left."""
        left = self.remaining()
        if left <= 0:
            self.check()
        return min(own, left) if own else left


def wait(seconds: float, *, clock: Clock, cancel: CancelToken | None, deadline: Deadline | None = None) -> None:
    """Sleep up to ``seconds``; raise WorkflowCancelled as soon as the token says so."""
    end = clock.monotonic() + seconds
    while True:
        if cancel is not None and cancel.is_cancelled():
            raise WorkflowCancelled("Workflow cancelled")
        left = end - clock.monotonic()
        if left <= 0:
            return
        if deadline is not None:
            deadline.check()
        clock.sleep(min(POLL_SECONDS, left))
