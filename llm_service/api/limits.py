"""Per-API-key limit on job submissions (``SUBMIT_RATE_LIMIT`` per ``SUBMIT_RATE_WINDOW_SECONDS``).

Uses the shared sliding-window limiter (Redis, fail-open) with the service name ``api_submit``; the bucket is named
after a hash of the presented secret, so the secret itself never reaches Redis or the logs.
"""
from __future__ import annotations

import math
from typing import Any

from ..config import Config
from ..ratelimit import make_rate_limiter
from .auth import api_key_id
from .errors import ApiError

SERVICE = "api_submit"


class SubmitLimiter:
    def __init__(self, redis_client: Any | None, config: Config) -> None:
        self.limit = config.submit_rate_limit
        self.window = config.submit_rate_window_seconds
        self._limiter = make_rate_limiter(redis_client, prefix=config.redis_key_prefix, global_limit=0,
                                          per_user_limit=self.limit, window_seconds=self.window)

    def acquire(self, secret: str) -> None:
        """Take one slot for this key, or raise the 429 answer (with ``Retry-After``)."""
        refused = self._limiter.acquire(SERVICE, api_key_id(secret))
        if refused is None:
            return
        retry_after = max(1, math.ceil(refused[1]))
        raise ApiError(429, "RateLimitExceeded",
                       f"Too many job submissions with this API key: the limit is {self.limit} per "
                       f"{self.window} seconds. Retry after {retry_after} seconds.",
                       headers={"Retry-After": str(retry_after)}, retry_after=retry_after)

    def release(self, secret: str) -> None:
        """Give the slot back: a submission that queued nothing does not count against the key."""
        self._limiter.release(SERVICE, api_key_id(secret))


def make_submit_limiter(redis_client: Any | None, config: Config) -> SubmitLimiter | None:
    return SubmitLimiter(redis_client, config) if config.submit_rate_limit > 0 else None
