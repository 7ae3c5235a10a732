"""Constants and helpers shared by tests (importable as ``tests.support``)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST_KEYS = {
    "OPENROUTER_API_KEY": "sk-or-test-0123456789abcdef",
    "WEATHERAPI_API_KEY": "weather-test-key-0123456789",
    "GOOGLE_PLACES_API_KEY": "places-test-key-0123456789",
}
UPSTREAM = {
    "OPENROUTER_BASE_URL": "https://openrouter.test/api/v1",
    "WEATHERAPI_BASE_URL": "https://weather.test/v1",
    "GOOGLE_PLACES_BASE_URL": "https://places.test/maps/api/place",
}


def shared_dir() -> Path | None:
    """``../shared`` next to the repository (or ``LLM_SHARED_DIR``): the old service's reference material."""
    candidates = [os.environ.get("LLM_SHARED_DIR"), str(REPO.parent / "shared")]
    for candidate in candidates:
        if candidate and Path(candidate, "fixtures", "original").is_dir():
            return Path(candidate)
    return None


class EpochClock:
    """Epoch seconds that only move when a test says so (``clock()`` reads, ``clock.advance(s)`` moves)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
