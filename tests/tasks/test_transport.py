"""The broker transport's one change: while every slot is taken, the consumer's wait is cut to 50 ms, so a freed
slot is noticed at the next poll (kombu would otherwise wait out Celery's 2 s drain timeout)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from kombu.transport import redis as kombu_redis

from llm_service.config import Config
from llm_service.tasks.celery_app import make_celery
from llm_service.tasks.transport import FULL_POLL_SECONDS, RefillingPoller, Transport


def channel(can_consume: bool, active: bool = True):
    return SimpleNamespace(active_queues=["celery"] if active else [],
                           qos=SimpleNamespace(can_consume=lambda: can_consume))


@pytest.fixture
def waits(monkeypatch):
    seen: list = []
    monkeypatch.setattr(kombu_redis.MultiChannelPoller, "get",
                        lambda self, callback, timeout=None: seen.append(timeout))
    return seen


@pytest.mark.parametrize("channels, expected", [
    ([channel(False)], FULL_POLL_SECONDS),              # every slot busy: poll again soon
    ([channel(True)], 2.0),                             # a slot is free: block in BRPOP as kombu does
    ([channel(False), channel(True)], 2.0),
    ([channel(False, active=False)], 2.0),              # not consuming (e.g. only the broadcast queue)
    ([], 2.0),
])
def test_the_wait_is_short_only_while_no_consuming_channel_has_credit(waits, channels, expected):
    poller = RefillingPoller()
    poller._channels = channels  # a plain list is enough for the check
    poller.get(lambda *_: None, timeout=2.0)
    assert waits == [expected]


def test_short_timeouts_are_left_alone(waits):
    poller = RefillingPoller()
    poller._channels = [channel(False)]
    poller.get(lambda *_: None, timeout=0.01)
    assert waits == [0.01]


def test_celery_uses_the_refilling_transport():
    app = make_celery(Config())
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        assert isinstance(connection.transport.cycle, RefillingPoller)
