"""Real sockets on 127.0.0.1 for the HTTP helper tests: a tiny server whose paths misbehave on purpose."""
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from llm_service.http.client import HttpClient


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        self.server.hit.set()
        path = urlsplit(self.path).path
        route = getattr(self, "route_" + path.strip("/").replace("-", "_"), None)
        if route is None:
            self.send_error(404)
            return
        try:
            route()
        except OSError:
            pass  # the client went away, which is what several tests are about

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self):
        self._json(200, {"ok": True, "user_agent": self.headers.get("User-Agent")})

    def route_drip(self):
        """Declares a big body, then sends it a byte at a time: never idle long enough for a socket timeout."""
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            while not self.server.release.wait(0.02):
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            self.server.client_gone.set()

    def route_stall(self):
        """Part of the body, then nothing until the test ends."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.server.release.wait(30)

    def route_lines(self):
        """Two lines at once, then a line every 20 ms until released (a streamed answer that keeps going)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            self.wfile.write(b"one\ntwo\r\n")
            self.wfile.flush()
            while not self.server.release.wait(0.02):
                self.wfile.write(b"more\n")
                self.wfile.flush()
        except OSError:
            self.server.client_gone.set()

    def route_slow_headers(self):
        self.server.release.wait(30)
        self._json(200, {"late": True})

    def route_big(self):
        """No Content-Length: the body runs until the connection closes (HTTP/1.0)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        for _ in range(16):
            self.wfile.write(b"y" * 65536)

    def route_big_declared(self):
        self.send_response(200)
        self.send_header("Content-Length", str(50 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"z" * 1024)

    def route_reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def route_redirect(self):
        target = parse_qs(urlsplit(self.path).query)["to"][0]
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[str] = []
        self.hit = threading.Event()
        self.release = threading.Event()
        self.client_gone = threading.Event()  # a drip write failed: the client hung up

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle_error(self, request, client_address):
        pass  # resets and abandoned reads are expected here


@pytest.fixture
def make_server():
    servers = []

    def make() -> _Server:
        server = _Server()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def make_client():
    clients = []

    def make(**kwargs) -> HttpClient:
        options = dict(pool_size=4, user_agent="llm-service-tests", poll_interval=0.02)
        options.update(kwargs)
        client = HttpClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
