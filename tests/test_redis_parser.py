"""The cheap readiness probe must decide like redis-py's own: a connection with unread data or a closed socket
is never handed to the next command, and under eventlet/gevent the probe is the OS poll, not the hub."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import redis

from llm_service.redis_parser import ReadinessParser, connection_kwargs

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def client():
    pool = redis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=1, **connection_kwargs())
    client = redis.Redis(connection_pool=pool)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running")
    yield client
    client.delete("parser-test")
    pool.disconnect()


def test_the_service_pool_uses_the_parser(client) -> None:
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, ReadinessParser)
        assert connection._parser.can_read(0) is False  # idle: the fast answer
    finally:
        client.connection_pool.release(connection)


def test_a_connection_holding_an_unread_reply_is_not_reused(client) -> None:
    client.set("parser-test", "the value")
    connection = client.connection_pool.get_connection()
    connection.send_command("GET", "parser-test")  # the reply is never read
    time.sleep(0.2)  # it has arrived (a reply still in flight is invisible to any zero-time check, redis-py's too)
    client.connection_pool.release(connection)
    assert client.incr("parser-test-counter") >= 1  # not b"the value": the stale reply was not taken for this one
    assert client.get("parser-test") == b"the value"
    client.delete("parser-test-counter")


def test_a_connection_the_server_closed_is_replaced(client) -> None:
    connection = client.connection_pool.get_connection()
    client_id = connection.send_command("CLIENT", "ID") or connection.read_response()
    client.connection_pool.release(connection)
    killer = redis.Redis.from_url(REDIS_URL)
    killer.client_kill_filter(_id=client_id)
    killer.close()
    assert client.ping() is True


@pytest.mark.parametrize("pool", ["eventlet", "gevent"])
def test_under_green_pools_the_probe_is_the_os_poll(pool: str) -> None:
    script = textwrap.dedent(f"""
        import warnings; warnings.simplefilter("ignore")
        if "{pool}" == "eventlet":
            import eventlet; eventlet.monkey_patch(); import eventlet.patcher as p
            original = p.original("select").poll
        else:
            from gevent import monkey; monkey.patch_all()
            original = monkey.get_original("select", "poll")
        import select
        from llm_service.redis_parser import os_poll
        assert getattr(select, "poll", None) is not original, "the test needs a patched select"
        assert os_poll() is original
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
