"""The Celery-backed :class:`llm_service.jobs.queue.JobQueue` the API and the worker publish through."""
from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from celery import Celery
from kombu import serialization
from kombu.utils import json as kombu_json
from kombu.exceptions import ChannelError, OperationalError

from ..jobs.queue import QueueUnavailable
from .celery_app import WEBHOOK_PRIORITY, WEBHOOK_TASK, WORKFLOW_TASK, broker_priority

log = logging.getLogger("llm_service.queue")


class CeleryJobQueue:
    def __init__(self, app: Celery, *, direct: bool = False, store_redis_url: str | None = None) -> None:
        """``direct``: publish jobs through :class:`DirectPublisher` (the API, where it is most of a submission's
        publishing cost); the worker keeps ``send_task``, which also links a job it publishes from inside a task
        to that task (``parent_id``). ``store_redis_url``: the job store's Redis; when the broker is that same
        Redis, :meth:`pending_push` lets the store publish a new job in the call that creates it."""
        self.app = app
        self._direct = DirectPublisher(app) if direct else None
        self._same_redis = store_redis_url is not None and same_redis(app.conf.broker_url, store_redis_url)

    def pending_push(self, job_id: str, *, priority: int) -> tuple[str, str] | None:
        """The job's message as ``(Redis list, payload)`` when the job store may push it itself, atomically with
        creating the job (see :class:`llm_service.jobs.queue.JobQueue`): only in the API (``direct``) and when the
        broker is the job store's Redis (``same_redis``). None otherwise, or when the broker cannot be reached
        (then :meth:`enqueue` decides, with its retries)."""
        if self._direct is None or not self._same_redis:
            return None
        try:
            return self._direct.pending_push(WORKFLOW_TASK, [job_id], task_id=job_id,
                                             priority=broker_priority(priority))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError, OSError):
            return None

    def enqueue(self, job_id: str, *, priority: int) -> None:
        if self._direct is not None:
            try:
                self._direct.publish(WORKFLOW_TASK, [job_id], task_id=job_id, priority=broker_priority(priority))
                return
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError, OSError):
                pass  # Redis unreachable, or every connection of the channel's pool busy: send_task below
                # reconnects, waits for a connection and retries as its policy says
        self._send(WORKFLOW_TASK, [job_id], task_id=job_id, priority=broker_priority(priority))

    def enqueue_webhook(self, job_id: str, event: str, *, attempt: int = 1, countdown: float = 0) -> None:
        self._send(WEBHOOK_TASK, [job_id, event, attempt], priority=WEBHOOK_PRIORITY,
                   countdown=countdown or None)

    def revoke(self, job_id: str) -> None:
        try:
            self.app.control.revoke(job_id)
        except Exception:  # best effort: the worker's claim refuses cancelled jobs anyway
            log.warning("could not broadcast revoke for job %s", job_id, extra={"job_id": job_id})

    def workers(self, timeout: float = 1.0) -> int | None:
        """Ping the workers; a broker that is down answers None quickly (no reconnect loop)."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
                replies = self.app.control.ping(timeout=timeout, connection=connection) or []
        except Exception:
            return None
        return len(replies)

    def backlog(self) -> int | None:
        """Messages waiting in the job queue, over all priority levels (a passive declare counts them)."""
        try:
            with self.app.pool.acquire(block=True) as connection:
                declared = connection.default_channel.queue_declare(queue=self.app.conf.task_default_queue,
                                                                    passive=True)
        except ChannelError:  # the Redis transport has no queue key while the queue is empty
            return 0
        except Exception:
            return None
        return int(declared.message_count)

    def _send(self, name: str, args: list, **options: object) -> None:
        try:
            self.app.send_task(name, args=args, retry=True,
                               retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                             "interval_max": 1.0}, **options)
        except Exception as exc:
            raise QueueUnavailable(f"could not publish {name}: {type(exc).__name__}") from exc


def same_redis(first: str, second: str) -> bool:
    """Whether two Redis URLs name the same server and database (scheme, host, port, db, user, password). Two
    spellings of one host (``localhost``, ``127.0.0.1``) count as different: the job is then published after its
    creation, as with any other broker."""
    def identity(url: str) -> tuple:
        parts = urlsplit(url)
        db = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
        return (parts.scheme, (parts.hostname or "localhost").lower(), parts.port or 6379, str(int(db or 0)),
                parts.username, parts.password)
    try:
        return first.startswith(("redis://", "rediss://")) and identity(first) == identity(second)
    except ValueError:  # an unparsable port or db: not provably the same
        return False


class DirectPublisher:
    """Publishes the message ``Celery.send_task`` publishes for a plain call (no countdown, no parent task, the
    default queue), built by Celery's and kombu's own functions, with one LPUSH on a channel kept open.

    ``send_task`` spends most of its time around the message rather than on it: task routing, configuration
    look-ups, a producer taken from the pool and given back, kombu's retry wrapper and its queue declaration (a copy
    of the queue object per call), a Redis client per publish. In the API (gevent) that was 0.3 ms of the 0.5 ms a
    submission spent publishing, a quarter of its CPU (docs/performance.md, section 4f). The message is the same
    (``tests/tasks/test_queue.py`` compares it with ``send_task``'s, field by field); Celery's publish signals are
    not sent, and the service connects none. The channel's Redis pool reconnects by itself; a connection error,
    or a burst of publishes larger than that pool, leaves the publish to ``send_task`` and its retry policy.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.queue: str = app.conf.task_default_queue
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None

    def _open_channel(self) -> Any:
        with self._lock:
            if self._channel is None:
                connection = self.app.connection_for_write()
                # One attempt (kombu would retry for seconds): with Redis down, send_task's own policy decides.
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
                self._connection, self._channel = connection, connection.default_channel
            return self._channel

    def _message(self, channel: Any, name: str, args: list, task_id: str, priority: int) -> dict:
        # What send_task passes for a plain call: no result is kept (ignore_result unset), replies name this thread.
        headers, properties, body, _ = self.app.amqp.as_task_v2(task_id, name, args, {}, ignore_result=None,
                                                                reply_to=self.app.thread_oid)
        content_type, content_encoding, data = serialization.dumps(body, serializer="json")
        properties["delivery_mode"] = 2  # persistent, as kombu's Producer sends Celery's queues
        return channel.prepare_message(data, priority, content_type, content_encoding, headers, properties)

    def publish(self, name: str, args: list, *, task_id: str, priority: int) -> None:
        channel = self._channel or self._open_channel()
        channel.basic_publish(self._message(channel, name, args, task_id, priority), exchange="",
                              routing_key=self.queue)

    def pending_push(self, name: str, args: list, *, task_id: str, priority: int) -> tuple[str, str] | None:
        """``(Redis list, payload)``: the LPUSH :meth:`publish` would send, for someone else to send (the job
        store's create script, in the same atomic call). None when kombu would send more than that one LPUSH (a
        queue with an expiry, a global key prefix), so the caller publishes as usual."""
        channel = self._channel or self._open_channel()
        if getattr(channel, "global_keyprefix", "") or self.queue in (getattr(channel, "_expires", None) or {}):
            return None
        message = self._message(channel, name, args, task_id, priority)
        # kombu's own steps of basic_publish to the default exchange: augment, choose the priority list, encode
        channel._inplace_augment_message(message, "", self.queue)
        key = channel._q_for_pri(self.queue, channel._get_message_priority(message, reverse=False))
        return key, kombu_json.dumps(message)
