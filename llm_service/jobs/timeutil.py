"""Timestamps for job records, derived from the store's injectable clock.

Records carry ISO-8601 UTC strings with millisecond precision and a ``Z`` suffix; indexes carry epoch seconds.
Both are derived from one integer millisecond value so that a timestamp read back from a record and the index score
of the same instant are exactly equal (the Lua scripts parse the ISO strings back to milliseconds, see ``lua.py``).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_to_ms(seconds: float) -> int:
    """Whole milliseconds; rounding (not truncation) so ``1.001`` held as ``1.00099999`` stays 1001."""
    return int(round(seconds * 1000))


def ms_to_iso(ms: int) -> str:
    """``2026-11-28T10:00:00.123Z``; integer arithmetic, so no float artefacts in the last digit."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_to_iso(seconds: float) -> str:
    return ms_to_iso(epoch_to_ms(seconds))


def iso_to_ms(text: str) -> int:
    """Inverse of :func:`ms_to_iso` (also accepts ``+00:00`` offsets and fewer fraction digits)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    delta = parsed - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso_to_epoch(text: str) -> float:
    return iso_to_ms(text) / 1000
