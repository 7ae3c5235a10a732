"""Fixtures for the job store tests: real Redis (db 15) under a unique prefix per test, in both reply modes
(bytes and str), a hand-moved clock, and a TCP proxy that breaks one Redis connection at a chosen command."""
from __future__ import annotations

import socket
import threading
from typing import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from llm_service.jobs import STATUSES, JobStore

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 15


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


@pytest.fixture(params=[False, True], ids=["bytes", "str"])
def r(request) -> Iterator[redis.Redis]:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, decode_responses=request.param)
    yield client
    client.close()


@pytest.fixture
def store(r, prefix, clock) -> JobStore:
    return JobStore(r, prefix=prefix, retention_days=30, clock=clock)


@pytest.fixture
def make_store(prefix, clock) -> Iterator[Callable[..., JobStore]]:
    """Another store on the same data, through its own client (a second worker/sweeper, or a proxied one)."""
    clients: list[redis.Redis] = []

    def build(port: int = REDIS_PORT, **client_kwargs) -> JobStore:
        client_kwargs.setdefault("retry", Retry(NoBackoff(), 2))
        client = redis.Redis(host=REDIS_HOST, port=port, db=REDIS_DB, **client_kwargs)
        clients.append(client)
        return JobStore(client, prefix=prefix, retention_days=30, clock=clock)

    yield build
    for client in clients:
        client.close()


def index_membership(client: redis.Redis, prefix: str, job_id: str) -> dict[str, bool]:
    return {status: client.zscore(f"{prefix}:jobs:status:{status}", job_id) is not None for status in STATUSES}


@pytest.fixture
def assert_indexed(r, prefix, store) -> Callable[[str], dict]:
    """Check the job's index entries agree with its hash; returns the record."""

    def check(job_id: str) -> dict:
        record = store.get(job_id)
        assert record is not None
        membership = index_membership(r, prefix, job_id)
        assert membership == {s: s == record["status"] for s in STATUSES}, (record["status"], membership)
        created = r.zscore(f"{prefix}:jobs:all", job_id)
        assert created is not None
        assert r.zscore(f"{prefix}:jobs:status:{record['status']}", job_id) == created
        if record["user_id"] is not None:
            assert r.zscore(f"{prefix}:jobs:user:{record['user_id']}", job_id) == created
            assert r.sismember(f"{prefix}:jobs:users", record["user_id"])
        return record

    return check


class BreakingProxy:
    """Forwards TCP to Redis; on the first connection only, breaks it when the client sends ``pattern``.

    mode "before": the bytes from ``pattern`` on are never delivered and both sides are closed (the server sees a
    half-sent command: a MULTI without its EXEC is discarded). mode "reply": the command reaches Redis and runs,
    but its reply is dropped and the connection closed (the client cannot tell whether it ran).
    """

    def __init__(self, pattern: bytes, mode: str) -> None:
        assert mode in ("before", "reply")
        self.pattern, self.mode = pattern, mode
        self.fired = threading.Event()
        self._armed = threading.Event()
        self._first = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((REDIS_HOST, REDIS_PORT))
            with self._lock:
                sabotage, self._first = self._first, False
                self._sockets += [client, upstream]
            threading.Thread(target=self._client_to_server, args=(client, upstream, sabotage), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(upstream, client, sabotage), daemon=True).start()

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _client_to_server(self, client: socket.socket, upstream: socket.socket, sabotage: bool) -> None:
        try:
            while data := client.recv(65536):
                at = data.find(self.pattern) if sabotage and not self.fired.is_set() else -1
                if at >= 0 and self.mode == "before":
                    upstream.sendall(data[:at])
                    self.fired.set()
                    self._close(client, upstream)
                    return
                if at >= 0:
                    self._armed.set()
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def _server_to_client(self, upstream: socket.socket, client: socket.socket, sabotage: bool) -> None:
        try:
            while data := upstream.recv(65536):
                if sabotage and self._armed.is_set() and not self.fired.is_set():
                    self.fired.set()
                    self._close(client, upstream)
                    return
                client.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            self._close(*self._sockets)


@pytest.fixture
def breaking_proxy() -> Iterator[Callable[[bytes, str], BreakingProxy]]:
    proxies: list[BreakingProxy] = []

    def build(pattern: bytes, mode: str) -> BreakingProxy:
        proxy = BreakingProxy(pattern, mode)
        proxies.append(proxy)
        return proxy

    yield build
    for proxy in proxies:
        proxy.close()
