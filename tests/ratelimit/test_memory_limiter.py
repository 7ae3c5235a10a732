"""In-process specifics: idle windows are forgotten, so many one-off users do not grow memory for ever."""
from __future__ import annotations

from llm_service.ratelimit import MemoryRateLimiter
from llm_service.ratelimit.windows import TimedDeques


def test_windows_of_idle_users_are_dropped(clock):
    limiter = MemoryRateLimiter(global_limit=1000, per_user_limit=5, window_seconds=60, clock=clock)
    for n in range(100):
        limiter.acquire("weatherapi", f"user{n}")
    clock.advance(61)
    limiter.acquire("weatherapi", "late")
    assert limiter.remaining("weatherapi", "user0") == (5, 999)
    assert len(limiter._sets._items) == 2  # the global window and "late"
    assert len(limiter._ledger._items) == 1


def test_timed_deques_prune_entries_exactly_one_window_old(clock):
    deques = TimedDeques(10)
    deques.append("k", (100.0, "a"))
    deques.append("k", (105.0, "b"))
    assert [e[1] for e in deques.live("k", 109.9)] == ["a", "b"]
    assert [e[1] for e in deques.live("k", 110.0)] == ["b"]
    assert deques.pop_newest("k", 110.0) == (105.0, "b")
    assert deques.pop_newest("k", 110.0) is None
