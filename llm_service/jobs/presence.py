"""Worker presence in Redis: each worker process publishes a heartbeat key with a TTL; readers count the live ones.

``/health`` used to ping the workers through the broker and wait out a 1 s reply timeout on every request; reading
these keys costs one Redis round trip, so a probe with a 1 s timeout passes. A worker that dies simply stops
refreshing its key, and it drops out of the count once the TTL (``WORKER_HEARTBEAT_TTL_SECONDS``) lapses; a worker
that shuts down cleanly withdraws at once. The worker container's healthcheck reads the same keys for its own host.

Layout: ``P:worker:<worker id>`` (JSON, expires after the TTL) and the set ``P:workers`` of ids that published; ids
whose key expired are dropped from the set by the next reader.
"""
from __future__ import annotations

import json
from typing import Any

# KEYS[1] the ids set; ARGV[1] the key prefix ("P:worker:"). Returns the JSON of every live worker and forgets the
# ids whose key expired, in one round trip.
_LIVE = r"""
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. id)
  if value then out[#out + 1] = value else redis.call('SREM', KEYS[1], id) end
end
return out
"""


class WorkerPresence:
    """Publish (worker side) and read (API, healthcheck) the live workers of one key prefix."""

    def __init__(self, prefix: str) -> None:
        self._key_prefix = f"{prefix}:worker:"
        self._ids = f"{prefix}:workers"

    def publish(self, client: Any, worker_id: str, info: dict, ttl_seconds: float) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.set(self._key_prefix + worker_id, json.dumps({"worker_id": worker_id, **info}),
                 px=max(1, int(ttl_seconds * 1000)))
        pipe.sadd(self._ids, worker_id)
        pipe.execute()

    def withdraw(self, client: Any, worker_id: str) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.delete(self._key_prefix + worker_id)
        pipe.srem(self._ids, worker_id)
        pipe.execute()

    def live(self, client: Any) -> list[dict]:
        """Every worker whose heartbeat has not expired (raises redis errors: the caller reports Redis down)."""
        values = client.eval(_LIVE, 1, self._ids, self._key_prefix)
        return [json.loads(value) for value in values]
