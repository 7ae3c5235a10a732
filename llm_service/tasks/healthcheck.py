"""``python -m llm_service.tasks.healthcheck``: the worker container's healthcheck.

Healthy when a worker process on this host has published its heartbeat key within ``WORKER_HEARTBEAT_TTL_SECONDS``
(``jobs/presence.py``): that proves its maintenance loop runs and it reaches Redis, which a process that merely
exists does not. Answers in one Redis round trip, unlike ``celery inspect ping`` through the broker.
"""
from __future__ import annotations

import socket
import sys

import redis

from ..config import Config
from ..jobs.presence import WorkerPresence


def main() -> int:
    config = Config.from_env()
    host = socket.gethostname()
    client = redis.Redis.from_url(config.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        workers = WorkerPresence(config.redis_key_prefix).live(client)
    except (redis.RedisError, OSError) as exc:
        print(f"unhealthy: Redis did not answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        client.close()
    mine = [w for w in workers if w.get("hostname") == host]
    if not mine:
        print(f"unhealthy: no live worker heartbeat from host {host}", file=sys.stderr)
        return 1
    print(f"healthy: {len(mine)} worker(s) on {host}, {sum(w.get('running', 0) for w in mine)} job(s) running")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
