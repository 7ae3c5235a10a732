"""The sandbox's HTTP transport and its Python API, :class:`SandboxServer`.

Standard library only: a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, one daemon thread per
connection. Simulated latency sleeps in the connection's own thread, so 100 concurrent clients with 200 ms latency
finish in about 200 ms, and a large listen backlog keeps a 200-client benchmark from seeing refused connections.
It runs over real TCP (in a background thread, or as its own process via ``python -m llm_service.sandbox``) so
worker processes started by integration tests can reach it.
"""
from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from .app import SandboxApp
from .faults import parse_fault
from .messages import Reply, Request
from .state import SandboxState, Settings, validate_changes

LISTEN_BACKLOG = 1024
IDLE_TIMEOUT_SECONDS = 300.0  # a keep-alive connection idle this long is closed
MAX_REQUEST_BODY = 32 * 1024 * 1024


class _BadBody(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    """One connection; also the :class:`~llm_service.sandbox.faults.Wire` the faults write through."""

    protocol_version = "HTTP/1.1"
    server_version = "llm-service-sandbox/1.0"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS
    server: "_SandboxHTTPServer"
    sent_status: int | None = None

    # -- every method goes through one place -----------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        self.sent_status = None
        try:
            body = self._read_body()
        except _BadBody as exc:
            self.close_connection = True  # the unread body would be parsed as the next request
            self.send(Reply.json(exc.status, {"error": {"message": str(exc)}, "sandbox": True}))
            return
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        query: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(name, value)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, path, query, headers, body)
        try:
            self.server.app.handle(request, self, self.server.connection_id(self.request))
        except OSError:  # the client went away mid-response, or a fault dropped the socket
            self.close_connection = True
        except Exception as exc:  # a sandbox bug: answer 500 rather than hang the client
            if self.sent_status is None:
                self.send(Reply.json(500, {"error": {"message": f"sandbox internal error: {type(exc).__name__}"},
                                           "sandbox": True}))
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BadBody(400, "Invalid Content-Length") from None
        if length < 0 or length > MAX_REQUEST_BODY:
            raise _BadBody(413, "Request body too large for the sandbox")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadBody(400, "Malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_REQUEST_BODY:
                raise _BadBody(413, "Request body too large for the sandbox")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    # -- Wire --------------------------------------------------------------------------------------------------
    def send(self, reply: Reply) -> None:
        self.send_head(reply.status, reply.content_type, reply.headers, len(reply.body))
        self.write(reply.body)

    def send_head(self, status: int, content_type: str, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.sent_status = status

    def write(self, data: bytes) -> None:
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def abort(self) -> None:
        """Drop the connection with a TCP reset (SO_LINGER 0), without answering."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())  # a real close now, despite the open rfile/wfile wrappers
        except OSError:
            pass

    # -- every response is labelled; access logging only when asked ---------------------------------------------
    def version_string(self) -> str:
        return self.server_version

    def end_headers(self) -> None:
        self.send_header("X-Sandbox", "true")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            self.server.access_log(f"[sandbox] {self.address_string()} {format % args}")


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], app: SandboxApp, access_log: Callable[[str], None] | None):
        self.app = app
        self.access_log = access_log
        self._connections_lock = threading.Lock()
        self._open: dict[socket.socket, int] = {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        connection_id = self.app.state.connection_opened()
        with self._connections_lock:
            self._open[request] = connection_id
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def connection_id(self, request: socket.socket) -> int | None:
        with self._connections_lock:
            return self._open.get(request)

    def close_open_connections(self) -> None:
        """Wake every handler blocked on an idle keep-alive connection so it exits."""
        with self._connections_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # disconnects mid-response are normal here (fault injection, benchmarks)


class SandboxServer:
    """A clearly labelled fake upstream (WeatherAPI, Google Places, OpenAI-compatible chat, webhook receiver)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency_ms: float = 0,
                 webhook_secret: str | None = None, quiet: bool = True, webhook_status: int = 200,
                 access_log: bool = False) -> None:
        settings = Settings(**validate_changes(
            {"latency_ms": latency_ms, "webhook_status": webhook_status, "webhook_secret": webhook_secret}))
        self.host, self.port = host, port
        self._state = SandboxState(settings)
        log = None if quiet else _print
        self._app = SandboxApp(self._state, log=log)
        self._access_log = _print if access_log else None
        self._httpd: _SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SandboxServer is not started")
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> "SandboxServer":
        if self._httpd is not None:
            raise RuntimeError("SandboxServer is already started")
        self._httpd = _SandboxHTTPServer((self.host, self.port), self._app, self._access_log)
        self.port = self._httpd.server_port
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._state.stopping.set()  # cut short any simulated latency or injected delay
        httpd.shutdown()
        httpd.close_open_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- where to point the service -------------------------------------------------------------------------------
    def base_urls(self) -> dict[str, str]:
        url = self.url
        return {
            "WEATHERAPI_BASE_URL": f"{url}/weatherapi/v1",
            "GOOGLE_PLACES_BASE_URL": f"{url}/places",
            "OPENROUTER_BASE_URL": f"{url}/openai/v1",
            "OPENAI_BASE_URL": f"{url}/openai/v1",
        }

    def webhook_url(self, name: str = "default") -> str:
        return f"{self.url}/webhooks/{name}"

    # -- inspection and control (direct, no HTTP round trip, so they never count as requests) ------------------------
    def stats(self) -> dict:
        return self._state.stats()

    def reset(self) -> None:
        """Counters, logs and faults emptied; settings back to the constructor's values."""
        self._state.reset()

    def set_latency(self, ms: float) -> None:
        self._state.configure(latency_ms=ms)

    def configure(self, **settings: Any) -> dict:
        """Change ``latency_ms``, ``webhook_status`` and/or ``webhook_secret``; returns the public settings."""
        return self._state.configure(**settings).public()

    def add_fault(self, path: str, kind: str, **options: Any) -> None:
        self._state.faults.add(parse_fault({"path": path, "kind": kind, **options}))

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def faults(self) -> list[dict]:
        return self._state.faults.snapshot()

    def requests(self) -> list[dict]:
        return self._state.requests()

    def webhooks(self) -> list[dict]:
        return self._state.webhooks()


def _print(line: str) -> None:
    print(line, flush=True)
