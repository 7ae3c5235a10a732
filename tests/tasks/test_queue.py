"""The Celery-backed queue's broker backlog count, against a real Redis broker (db 14, a queue of its own)."""
from __future__ import annotations

import uuid

import pytest
import redis

from llm_service.config import Config
from llm_service.tasks.celery_app import make_celery
from llm_service.tasks.queue import CeleryJobQueue

BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def queue():
    name = f"test-backlog-{uuid.uuid4().hex[:8]}"
    app = make_celery(Config(redis_url=BROKER, celery_queue=name))
    yield CeleryJobQueue(app)
    app.pool.force_close_all()
    client = redis.Redis.from_url(BROKER)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_backlog_counts_waiting_jobs_over_every_priority(queue):
    assert queue.backlog() == 0  # the queue does not exist yet
    for priority in (0, 5, 10, 10):
        queue.enqueue(str(uuid.uuid4()), priority=priority)
    assert queue.backlog() == 4


def test_backlog_is_unknown_when_the_broker_is_down():
    queue = CeleryJobQueue(make_celery(Config(redis_url="redis://127.0.0.1:1/0")))
    queue.app.conf.broker_connection_max_retries = 0
    queue.app.conf.broker_connection_timeout = 0.5
    assert queue.backlog() is None
