"""Time-ordered entries per key that forget what is older than the window.

Used for the in-process limiter's sliding windows and for the ledger of slots this process took (so ``release``
can give back exactly its own slot). Not locked: each owner guards it with its own lock.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Hashable


class TimedDeques:
    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._items: dict[Hashable, deque[tuple[Any, ...]]] = {}
        self._last_sweep: float | None = None

    def live(self, key: Hashable, now: float) -> deque[tuple[Any, ...]]:
        """The entries of ``key`` still inside the window, oldest first (``entry[0]`` is its time).

        An entry exactly one window old is out, as in the old limiter (it pruned scores up to now - window).
        """
        items = self._items.get(key)
        if items is None:
            return deque()
        cutoff = now - self._window
        while items and items[0][0] <= cutoff:
            items.popleft()
        if not items:
            del self._items[key]
        return items

    def append(self, key: Hashable, entry: tuple[Any, ...]) -> None:
        """Add ``entry`` (its time first) and, once per window, drop keys whose entries have all expired."""
        now = entry[0]
        self._items.setdefault(key, deque()).append(entry)
        if self._last_sweep is None or now - self._last_sweep >= self._window:
            self._last_sweep = now
            for stale in list(self._items):
                self.live(stale, now)

    def remove_member(self, key: Hashable, member: str) -> None:
        """Remove the entry whose ``entry[1]`` is ``member`` (searching from the newest)."""
        items = self._items.get(key)
        if not items:
            return
        for index in range(len(items) - 1, -1, -1):
            if items[index][1] == member:
                del items[index]
                break
        if not items:
            del self._items[key]

    def pop_newest(self, key: Hashable, now: float) -> tuple[Any, ...] | None:
        items = self.live(key, now)
        if not items:
            return None
        entry = items.pop()
        if not items:
            self._items.pop(key, None)
        return entry

    def delete(self, key: Hashable) -> None:
        self._items.pop(key, None)
