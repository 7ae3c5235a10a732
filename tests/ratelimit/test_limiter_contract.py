"""Behaviour both limiters share, run against the in-process and the Redis limiter with a hand-moved clock.

The old acceptance cases §12.3 #1-9 are restated with ``acquire`` (atomic check-and-record) in place of the old
``check`` + ``record`` pair.
"""
from __future__ import annotations

import threading

import pytest

from llm_service.ratelimit import MemoryRateLimiter, RedisRateLimiter

SERVICE = "google_places"


@pytest.fixture(params=["memory", "redis"])
def make(request, clock):
    def build(**limits):
        limits.setdefault("window_seconds", 3600)
        if request.param == "memory":
            return MemoryRateLimiter(clock=clock, **limits)
        return RedisRateLimiter(request.getfixturevalue("redis_client"),
                                prefix=request.getfixturevalue("redis_prefix"), clock=clock, **limits)
    return build


# -- old acceptance cases ----------------------------------------------------------------------------------------

def test_first_call_is_allowed(make):
    assert make(per_user_limit=10, global_limit=100).acquire(SERVICE, "user123") is None


def test_user_limit_refuses_with_a_retry_after(make):
    limiter = make(per_user_limit=2, global_limit=100)
    assert limiter.acquire(SERVICE, "user123") is None
    assert limiter.acquire(SERVICE, "user123") is None
    limit_type, retry_after = limiter.acquire(SERVICE, "user123")
    assert limit_type == "user"
    assert retry_after > 0


def test_global_limit_refuses_other_users(make):
    limiter = make(per_user_limit=10, global_limit=2)
    assert limiter.acquire(SERVICE, "user1") is None
    assert limiter.acquire(SERVICE, "user2") is None
    assert limiter.acquire(SERVICE, "user3")[0] == "global"


def test_user_limits_are_independent(make):
    limiter = make(per_user_limit=1, global_limit=100)
    assert limiter.acquire(SERVICE, "user1") is None
    assert limiter.acquire(SERVICE, "user2") is None
    assert limiter.acquire(SERVICE, "user1")[0] == "user"


def test_remaining_counts_down(make):
    limiter = make(per_user_limit=10, global_limit=100)
    for _ in range(3):
        limiter.acquire(SERVICE, "user123")
    assert limiter.remaining(SERVICE, "user123") == (7, 97)


def test_remaining_without_user(make):
    assert make(per_user_limit=10, global_limit=100).remaining(SERVICE) == (-1, 100)


def test_reset_user_window(make):
    limiter = make(per_user_limit=1, global_limit=100)
    limiter.acquire(SERVICE, "user123")
    limiter.reset(SERVICE, "user123")
    assert limiter.acquire(SERVICE, "user123") is None


def test_reset_global_window(make):
    limiter = make(per_user_limit=10, global_limit=1)
    limiter.acquire(SERVICE, "user123")
    limiter.reset(SERVICE)
    assert limiter.acquire(SERVICE, "user456") is None


def test_window_expiry_allows_again(make, clock):
    limiter = make(per_user_limit=1, global_limit=100, window_seconds=1)
    assert limiter.acquire(SERVICE, "user123") is None
    assert limiter.acquire(SERVICE, "user123")[0] == "user"
    clock.advance(2)
    assert limiter.acquire(SERVICE, "user123") is None


# -- atomicity, release and the rest of the contract -----------------------------------------------------------

def test_concurrent_acquires_never_exceed_the_limit(make):
    limiter = make(global_limit=5)
    barrier = threading.Barrier(20)
    outcomes = []
    lock = threading.Lock()

    def call():
        barrier.wait()
        outcome = limiter.acquire(SERVICE)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(outcome is None for outcome in outcomes) == 5
    assert all(outcome[0] == "global" for outcome in outcomes if outcome is not None)
    assert limiter.remaining(SERVICE) == (-1, 0)


def test_refusal_records_nothing(make, clock):
    limiter = make(global_limit=2, window_seconds=60)
    limiter.acquire(SERVICE)
    clock.advance(10)
    limiter.acquire(SERVICE)
    for _ in range(5):
        assert limiter.acquire(SERVICE) is not None
    assert limiter.remaining(SERVICE) == (-1, 0)
    clock.advance(50)  # the first call leaves the window; refusals took no slot
    assert limiter.remaining(SERVICE) == (-1, 1)
    assert limiter.acquire(SERVICE) is None


def test_retry_after_is_when_the_oldest_call_leaves_the_window(make, clock):
    limiter = make(global_limit=2, window_seconds=60)
    limiter.acquire(SERVICE)
    clock.advance(10)
    limiter.acquire(SERVICE)
    clock.advance(5.5)
    assert limiter.acquire(SERVICE) == ("global", 45)  # 60 - 15.5 = 44.5, rounded up
    clock.advance(44.4)
    assert limiter.acquire(SERVICE) == ("global", 1)  # 0.1 s left still means "retry in a second"


def test_release_gives_the_slot_back(make):
    limiter = make(per_user_limit=1, global_limit=1)
    assert limiter.acquire(SERVICE, "user1") is None
    limiter.release(SERVICE, "user1")
    assert limiter.remaining(SERVICE, "user1") == (1, 1)
    assert limiter.acquire(SERVICE, "user2") is None


def test_release_removes_only_one_slot_and_only_its_own(make):
    limiter = make(per_user_limit=5, global_limit=10)
    limiter.acquire(SERVICE, "user1")
    limiter.acquire(SERVICE, "user1")
    limiter.acquire(SERVICE, "user2")
    limiter.release(SERVICE, "user1")
    assert limiter.remaining(SERVICE, "user1") == (4, 8)
    assert limiter.remaining(SERVICE, "user2") == (4, 8)
    limiter.release(SERVICE, "user1")
    limiter.release(SERVICE, "user1")  # nothing left to give back for user1
    assert limiter.remaining(SERVICE, "user2") == (4, 9)


def test_release_without_acquire_changes_nothing(make):
    limiter = make(global_limit=3)
    limiter.acquire(SERVICE, "user1")
    limiter.release(SERVICE, "user2")
    limiter.release("other_service")
    assert limiter.remaining(SERVICE) == (-1, 2)


def test_services_are_limited_separately(make):
    limiter = make(global_limit=1)
    assert limiter.acquire("weatherapi") is None
    assert limiter.acquire("google_places") is None
    assert limiter.acquire("weatherapi")[0] == "global"


def test_global_limit_is_checked_before_user_limit(make):
    limiter = make(per_user_limit=1, global_limit=1)
    limiter.acquire(SERVICE, "user1")
    assert limiter.acquire(SERVICE, "user1")[0] == "global"


def test_calls_without_a_user_count_only_globally(make):
    limiter = make(per_user_limit=1, global_limit=10)
    assert limiter.acquire(SERVICE) is None
    assert limiter.acquire(SERVICE) is None
    assert limiter.acquire(SERVICE, "user1") is None
    assert limiter.remaining(SERVICE, "user1") == (0, 7)


def test_zero_limits_mean_unlimited(make):
    limiter = make(global_limit=0, per_user_limit=0)
    assert all(limiter.acquire(SERVICE, "user1") is None for _ in range(50))
    assert limiter.remaining(SERVICE, "user1") == (-1, -1)


def test_zero_user_limit_still_enforces_the_global_limit(make):
    limiter = make(global_limit=2, per_user_limit=0)
    limiter.acquire(SERVICE, "user1")
    limiter.acquire(SERVICE, "user1")
    assert limiter.acquire(SERVICE, "user1")[0] == "global"
    assert limiter.remaining(SERVICE, "user1") == (-1, 0)


def test_zero_global_limit_still_enforces_the_user_limit(make):
    limiter = make(global_limit=0, per_user_limit=1)
    limiter.acquire(SERVICE, "user1")
    assert limiter.acquire(SERVICE, "user1")[0] == "user"
    assert limiter.acquire(SERVICE, "user2") is None
    assert limiter.remaining(SERVICE, "user1") == (0, -1)


@pytest.mark.parametrize("limits", [{"global_limit": -1}, {"per_user_limit": -2}, {"window_seconds": 0}])
def test_invalid_limits_are_rejected(make, limits):
    with pytest.raises(ValueError):
        make(**limits)
