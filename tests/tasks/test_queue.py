"""The Celery-backed queue's broker backlog count, against a real Redis broker (db 14, a queue of its own)."""
from __future__ import annotations

import json
import uuid

import pytest
import redis
from kombu import pools

from llm_service.config import Config
from llm_service.jobs import JobStore
from llm_service.tasks.celery_app import make_celery
from llm_service.tasks.queue import CeleryJobQueue

BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def queue():
    name = f"test-backlog-{uuid.uuid4().hex[:8]}"
    app = make_celery(Config(redis_url=BROKER, celery_queue=name))
    yield CeleryJobQueue(app)
    app.pool.force_close_all()
    pools.reset()  # kombu keeps one pool per broker URL for every app: the next test's app must not get it closed
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


def _pushed(client: redis.Redis, name: str) -> list[tuple[str, dict]]:
    """Every message in the queue's priority lists, as (list key, message without its random delivery tag)."""
    found = []
    for key in sorted(client.scan_iter(match=f"{name}*")):
        for raw in client.lrange(key, 0, -1):
            message = json.loads(raw)
            assert len(message["properties"].pop("delivery_tag")) == 36
            found.append((key.decode(), message))
    return found


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER)
    yield client
    client.close()


def _sent_by_send_task(queue: CeleryJobQueue, client: redis.Redis, job_id: str, priority: int) -> list:
    """What ``send_task`` pushes for the job (see :func:`_pushed`), taken off the queue again."""
    queue.enqueue(job_id, priority=priority)
    by_celery = _pushed(client, queue.app.conf.task_default_queue)
    client.delete(*[key for key, _ in by_celery])
    return by_celery


@pytest.mark.parametrize("priority", [0, 5, 10])
def test_the_direct_publisher_sends_what_send_task_sends(queue, broker, priority):
    """The API's publisher builds the message itself: it must be send_task's, key for key and in the same list."""
    client, name, job_id = broker, queue.app.conf.task_default_queue, str(uuid.uuid4())
    by_celery = _sent_by_send_task(queue, client, job_id, priority)
    direct = CeleryJobQueue(queue.app, direct=True)
    direct.enqueue(job_id, priority=priority)
    assert _pushed(client, name) == by_celery
    assert json.dumps(_pushed(client, name)) == json.dumps(by_celery)  # the same key order too
    assert by_celery[0][1]["headers"]["id"] == job_id
    direct._direct._connection.release()


def test_the_direct_publisher_falls_back_to_send_task_after_a_connection_error(queue, monkeypatch):
    direct = CeleryJobQueue(queue.app, direct=True)

    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(direct._direct, "publish", refuse)
    direct.enqueue(str(uuid.uuid4()), priority=3)
    assert queue.backlog() == 1


@pytest.mark.parametrize("priority", [0, 7])
def test_a_job_published_by_its_create_call_carries_send_tasks_message(queue, broker, priority, redis_prefix):
    """Where the broker is the store's Redis the create script pushes the message: it must be send_task's."""
    client, name, job_id = broker, queue.app.conf.task_default_queue, str(uuid.uuid4())
    by_celery = _sent_by_send_task(queue, client, job_id, priority)
    api_queue = CeleryJobQueue(queue.app, direct=True, store_redis_url=BROKER)
    push = api_queue.pending_push(job_id, priority=priority)
    assert push is not None
    store = JobStore(client, prefix=redis_prefix)
    store.create({"job_id": job_id, "workflow_name": "wf"}, message=push)
    assert json.dumps(_pushed(client, name)) == json.dumps(by_celery)
    assert queue.backlog() == 1
    store.delete([job_id])
    api_queue._direct._connection.release()


@pytest.mark.parametrize("store_url, same", [
    (BROKER, True), ("redis://127.0.0.1/14", True), ("redis://localhost:6379/14", False),
    ("redis://127.0.0.1:6379/13", False),
    ("redis://127.0.0.1:6380/14", False), ("redis://:secret@127.0.0.1:6379/14", False), (None, False)])
def test_only_a_store_on_the_brokers_redis_publishes_on_create(queue, store_url, same):
    api_queue = CeleryJobQueue(queue.app, direct=True, store_redis_url=store_url)
    assert (api_queue.pending_push(str(uuid.uuid4()), priority=0) is not None) is same
    assert CeleryJobQueue(queue.app, store_redis_url=store_url).pending_push(str(uuid.uuid4()), priority=0) is None
    if api_queue._direct._connection is not None:
        api_queue._direct._connection.release()
