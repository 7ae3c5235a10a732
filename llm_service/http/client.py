"""The one HTTP client of the process: pooled sessions, a total time budget per call, cancellation, size limits.

Every upstream call (LLM providers, WeatherAPI, Google Places, webhooks, email) goes through :class:`HttpClient`,
so the properties that matter in production live in one place:

* ``timeout`` is the *total* wall-clock budget. ``requests`` only knows per-socket timeouts, so each call runs in a
  worker thread (green under eventlet/gevent monkey-patching) that the caller waits on; when the budget is spent or
  the job is cancelled the caller stops waiting, and the worker's read side is shut down so it cannot keep a
  connection slot busy on a slow-drip server.
* Two sessions: ``trusted`` for operator-configured base URLs and ``guarded`` for user-supplied URLs, which
  connects through the SSRF guard. A pooled connection therefore never carries a guarded request past the guard.
* No retries here: the engine owns the one retry layer.
* Errors come out as the typed errors of :mod:`llm_service.engine.errors`, with messages that never include a URL
  (query strings carry API keys) or any other secret.
"""
from __future__ import annotations

import http.client
import json as jsonlib
import socket
import ssl
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Mapping, Optional
from urllib.parse import urlsplit

import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .. import __version__
from ..config import Config
from ..engine.errors import (
    ConfigurationError,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UserInputError,
    WorkflowCancelled,
    WorkflowError,
)
from ..engine.ports import CancelToken
from ..redaction import redact_text
from .prepared import RequestPreparer, no_cookies
from .ssrf import AddressPolicy, GuardedHTTPAdapter

_CHUNK = 64 * 1024
_HOST_POOLS = 16  # distinct hosts whose idle connections each session keeps
_MAX_REDIRECTS = 5
_END = object()  # after the last line of a streamed body


class HttpResponse:
    """A fully read response. ``body`` is already bounded by the size limit."""

    def __init__(self, *, status: int, headers: Mapping[str, str], body: bytes, elapsed_ms: int,
                 service: str = "http") -> None:
        self.status = status
        self.headers = CaseInsensitiveDict(headers)
        self.body = body
        self.elapsed_ms = elapsed_ms
        self.service = service

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def text(self) -> str:
        charset = "utf-8"
        for part in (self.headers.get("Content-Type") or "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; anything else is an :class:`UpstreamBadResponse` naming what arrived instead."""
        content_type = self.content_type or "no content type"
        try:
            return jsonlib.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            pass
        if "json" in content_type:
            raise UpstreamBadResponse(f"Expected JSON from {self.service}, got malformed JSON ({content_type})",
                                      service=self.service, status_code=self.status)
        raise UpstreamBadResponse(f"Expected JSON from {self.service}, got {content_type}",
                                  service=self.service, status_code=self.status)

    def retry_after(self) -> Optional[float]:
        """``Retry-After`` in seconds (delta-seconds or HTTP-date form), or ``None`` when absent or unusable."""
        raw = (self.headers.get("Retry-After") or "").strip()
        if not raw:
            return None
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None or when.tzinfo is None:
                return None
            seconds = max(0.0, when.timestamp() - time.time())
        return seconds if seconds >= 0 and seconds != float("inf") else None


class _Call:
    """State shared between the waiting caller and the worker thread doing the I/O."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Optional[HttpResponse] = None
        self.error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._abandoned = False
        self._raw: Any = None
        self.lines: Optional[queue.Queue] = None  # streamed calls: body lines for the caller, then _END

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def attach(self, raw: Any) -> None:
        """Remember the response being read, so :meth:`abandon` can unblock a read stuck on it."""
        with self._lock:
            self._raw = raw
            abandoned = self._abandoned
        if abandoned:
            _shutdown(raw)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            raw = self._raw
        if raw is not None:
            _shutdown(raw)


def _shutdown(raw: Any) -> None:
    """Shut the read side of the response's socket so a blocked read returns (urllib3 >= 2.3)."""
    shutdown = getattr(raw, "shutdown", None)
    if shutdown is None:
        return
    try:
        shutdown()
    except (ValueError, OSError):
        pass  # already released, closed or not socket-backed


def _host_of(url: str) -> str:
    """Host (and port) for messages: never the path, query string or userinfo."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "unknown host"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "unknown host"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (``reason``, args, ``__cause__``/``__context__``), breadth first."""
    seen: set[int] = set()
    queue = [exc]
    while queue and len(seen) < 16:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__,
                  *[a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]]
        queue.extend(e for e in linked if isinstance(e, BaseException))


_REASONS: tuple[tuple[type, str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset by peer"),
    (http.client.RemoteDisconnected, "server closed the connection without a response"),
    (http.client.IncompleteRead, "connection closed before the full response was received"),
    (socket.gaierror, "host name could not be resolved"),
    (u3.NameResolutionError, "host name could not be resolved"),
    (ssl.SSLError, "TLS handshake failed"),
    (u3.SSLError, "TLS handshake failed"),
    (requests.exceptions.SSLError, "TLS handshake failed"),
    (u3.ProxyError, "proxy error"),
    (BrokenPipeError, "connection closed while sending"),
)


def _short_reason(exc: BaseException) -> str:
    """A few words on why a connection failed, from the exception chain's types, never from its texts (which
    include URLs); an OS error's own description (``strerror``, e.g. "Network is unreachable") is safe."""
    chain = list(_causes(exc))
    for kind, reason in _REASONS:
        if any(isinstance(e, kind) for e in chain):
            return reason
    for error in chain:
        if isinstance(error, OSError) and isinstance(error.strerror, str) and error.strerror:
            return error.strerror.lower()
    return "connection error"


def _translate(exc: BaseException, *, service: str, url: str, timeout: float, guarded: bool) -> BaseException:
    """Map a transport exception to a typed error whose message carries no URL or secret."""
    if isinstance(exc, WorkflowError):
        if exc.service is None:
            exc.service = service
        exc.message = redact_text(exc.message)
        exc.args = (exc.message,)
        return exc
    host = _host_of(url)
    error: WorkflowError
    if isinstance(exc, (requests.exceptions.Timeout, u3.TimeoutError, socket.timeout)):
        error = UpstreamTimeout(f"Request timeout after {timeout:g}s", service=service)
    elif isinstance(exc, requests.exceptions.TooManyRedirects):
        error = UpstreamHTTPError(f"Too many redirects from {host} (more than {_MAX_REDIRECTS})", service=service)
    elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema, requests.exceptions.URLRequired,
                          u3.LocationParseError)):
        kind = UserInputError if guarded else ConfigurationError
        error = kind(f"Invalid URL for {service} (host {host}): {type(exc).__name__}", service=service)
    elif isinstance(exc, u3.DecodeError):
        error = UpstreamBadResponse(f"Could not decode the response body from {service}", service=service)
    elif isinstance(exc, (requests.exceptions.RequestException, u3.HTTPError, OSError,
                          http.client.HTTPException)):
        error = UpstreamConnectionError(f"Connection failed to {host}: {_short_reason(exc)}", service=service)
    else:
        return exc  # a programming error (bad argument types...): let it surface unchanged
    error.message = redact_text(error.message)
    error.args = (error.message,)
    error.__suppress_context__ = True  # the original's text may include the URL and its key=...
    return error


class HttpClient:
    """One per process; see the module docstring for what it guarantees."""

    def __init__(self, *, pool_size: int, user_agent: str, connect_timeout: float = 10.0,
                 max_response_bytes: int = 10 * 1024 * 1024, allow_private_networks: bool = False,
                 poll_interval: float = 0.1, address_policy: Optional[AddressPolicy] = None) -> None:
        """``address_policy`` replaces the guarded session's default "refuse non-public peers" rule
        (``policy(ip, port) -> reason | None``); ``allow_private_networks=True`` turns the guard off."""
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.pool_size = pool_size
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self.allow_private_networks = allow_private_networks
        self.poll_interval = poll_interval
        adapter_kwargs = dict(pool_connections=_HOST_POOLS, pool_maxsize=pool_size, max_retries=0, pool_block=False)
        self.trusted = self._session(HTTPAdapter(**adapter_kwargs), trust_env=True)
        guarded_adapter = (HTTPAdapter(**adapter_kwargs) if allow_private_networks
                           else GuardedHTTPAdapter(policy=address_policy, **adapter_kwargs))
        self.guarded = self._session(guarded_adapter, trust_env=False)
        # Per session: (session, in-flight slots). The slots cap TCP connections and make waiting for one timed.
        self._lanes = {False: (RequestPreparer(self.trusted), threading.BoundedSemaphore(pool_size)),
                       True: (RequestPreparer(self.guarded), threading.BoundedSemaphore(pool_size))}
        # Threads doing the I/O, reused across requests. Every call holds a slot while its thread works, so
        # two lanes of pool_size slots never need more threads than this, and nothing queues behind them.
        self._workers = ThreadPoolExecutor(max_workers=2 * pool_size, thread_name_prefix="http")

    def _session(self, adapter: HTTPAdapter, *, trust_env: bool) -> requests.Session:
        session = requests.Session()
        session.trust_env = trust_env
        no_cookies(session)
        session.max_redirects = _MAX_REDIRECTS
        session.headers["User-Agent"] = self.user_agent
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        self._workers.shutdown(wait=False)
        self.trusted.close()
        self.guarded.close()

    def request(self, method: str, url: str, *, params: Any = None, json: Any = None, data: Any = None,
                headers: Optional[Mapping[str, str]] = None, timeout: float, cancel: Optional[CancelToken] = None,
                guarded: bool = False, service: str = "http", allow_redirects: bool = False,
                max_bytes: Optional[int] = None) -> HttpResponse:
        """Send one request and read the whole body within ``timeout`` seconds in total.

        Raises UpstreamTimeout, UpstreamConnectionError, UpstreamBadResponse (body over the limit),
        BlockedAddressError (guarded session refused the peer) or WorkflowCancelled; never for an HTTP status.
        """
        call, deadline = self._submit(_Call(), method, url, params=params, json=json, data=data, headers=headers,
                                      timeout=timeout, cancel=cancel, guarded=guarded, service=service,
                                      allow_redirects=allow_redirects, max_bytes=max_bytes)
        return self._wait(call, deadline, cancel, service, timeout)

    def stream_lines(self, method: str, url: str, *, on_line: Callable[[str], None], json: Any = None,
                     headers: Optional[Mapping[str, str]] = None, timeout: float,
                     cancel: Optional[CancelToken] = None, guarded: bool = False, service: str = "http",
                     max_bytes: Optional[int] = None) -> HttpResponse:
        """:meth:`request` for a streamed answer (server-sent events): a 2xx body is handed to ``on_line`` line by
        line (decoded, without the line break) as it arrives, on the caller's thread, and the returned response's
        body is empty; any other status is read whole, as :meth:`request` reads it.

        The same guarantees as :meth:`request`: ``timeout`` bounds the whole call, the size limit counts every
        streamed byte, and a cancellation (or an error ``on_line`` raises) stops reading and closes the
        connection at once.
        """
        call = _Call()
        call.lines = queue.Queue()
        call, deadline = self._submit(call, method, url, params=None, json=json, data=None, headers=headers,
                                      timeout=timeout, cancel=cancel, guarded=guarded, service=service,
                                      allow_redirects=False, max_bytes=max_bytes)
        lines = call.lines
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UpstreamTimeout(f"Request timeout after {timeout:g}s", service=service)
                try:
                    line = lines.get(timeout=remaining if cancel is None else min(remaining, self.poll_interval))
                except queue.Empty:
                    line = None
                self._check_cancel(cancel, service)
                if line is _END:
                    break
                if line is not None:
                    on_line(line)
        except BaseException:  # the budget, a cancel, on_line's error, Ctrl-C: stop reading, close the connection
            call.abandon()
            raise
        return self._wait(call, deadline, cancel, service, timeout)

    def _submit(self, call: _Call, method: str, url: str, *, timeout: float, cancel: Optional[CancelToken],
                guarded: bool, service: str, max_bytes: Optional[int], **request: Any) -> tuple[_Call, float]:
        """Take an in-flight slot and start the call on an I/O thread; returns it with its deadline."""
        started = time.monotonic()
        deadline = started + timeout
        self._check_cancel(cancel, service)
        preparer, slots = self._lanes[bool(guarded)]
        self._acquire(slots, deadline, cancel, service, timeout)
        job = dict(preparer=preparer, method=method, url=url, timeout=timeout, deadline=deadline, started=started,
                   service=service, guarded=guarded,
                   limit=self.max_response_bytes if max_bytes is None else max_bytes, **request)
        try:
            self._workers.submit(self._run, call, slots, job)
        except BaseException:
            slots.release()
            raise
        return call, deadline

    # -- caller side ----------------------------------------------------------------------------------------

    @staticmethod
    def _check_cancel(cancel: Optional[CancelToken], service: str) -> None:
        if cancel is not None and cancel.is_cancelled():
            raise WorkflowCancelled(f"Cancelled while waiting for {service}", service=service)

    def _acquire(self, slots: threading.BoundedSemaphore, deadline: float, cancel: Optional[CancelToken],
                 service: str, timeout: float) -> None:
        """Wait for an in-flight slot, but no longer than the call's budget (and not past a cancellation)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout(f"Request timeout after {timeout:g}s (no free connection slot for {service})",
                                      service=service)
            step = remaining if cancel is None else min(remaining, self.poll_interval)
            if slots.acquire(timeout=step):
                return
            self._check_cancel(cancel, service)

    def _wait(self, call: _Call, deadline: float, cancel: Optional[CancelToken], service: str,
              timeout: float) -> HttpResponse:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                call.abandon()
                raise UpstreamTimeout(f"Request timeout after {timeout:g}s", service=service)
            step = remaining if cancel is None else min(remaining, self.poll_interval)
            if call.done.wait(step):
                break
            if cancel is not None and cancel.is_cancelled():
                call.abandon()
                raise WorkflowCancelled(f"Cancelled while waiting for {service}", service=service)
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    # -- worker side ----------------------------------------------------------------------------------------

    def _run(self, call: _Call, slots: threading.BoundedSemaphore, job: dict) -> None:
        try:
            call.result = self._perform(call, **job)
        except BaseException as exc:  # handed to the caller, which re-raises it
            call.error = _translate(exc, service=job["service"], url=job["url"], timeout=job["timeout"],
                                    guarded=job["guarded"])
        finally:
            slots.release()
            call.done.set()
            if call.lines is not None:
                call.lines.put(_END)

    def _perform(self, call: _Call, *, preparer: RequestPreparer, method: str, url: str, params: Any, json: Any,
                 data: Any, headers: Optional[Mapping[str, str]], timeout: float, deadline: float, started: float,
                 service: str, guarded: bool, allow_redirects: bool, limit: int) -> HttpResponse:
        def on_response(response: requests.Response, **_: Any) -> requests.Response:
            call.attach(response.raw)
            if allow_redirects and response.is_redirect:
                # requests would read a redirect's body without any bound; read it under ours first.
                self._read_body(response.raw, call, deadline, limit, service, timeout)
            return response

        read_timeout = max(0.001, deadline - time.monotonic())
        timeouts = (min(self.connect_timeout, read_timeout), read_timeout)
        prepared = None if allow_redirects else preparer.prepare(method, url, params=params, json=json, data=data,
                                                                 headers=headers)
        settings = None if prepared is None else preparer.send_settings(prepared.url)
        if prepared is not None and settings is not None:  # the common case: see http/prepared.py
            response = preparer.session.get_adapter(prepared.url).send(prepared, stream=True, timeout=timeouts,
                                                                       **settings)
            call.attach(response.raw)
        else:
            response = preparer.session.request(method, url, params=params, json=json, data=data,
                                                headers=dict(headers or {}), timeout=timeouts, stream=True,
                                                allow_redirects=allow_redirects, hooks={"response": [on_response]})
        try:
            if call.lines is not None and 200 <= response.status_code < 300:
                self._read_lines(response.raw, call, deadline, limit, service, timeout)
                body = b""
            else:
                body = self._read_body(response.raw, call, deadline, limit, service, timeout)
        finally:
            response.close()
        return HttpResponse(status=response.status_code, headers=response.headers, body=body,
                            elapsed_ms=int((time.monotonic() - started) * 1000), service=service)

    @classmethod
    def _read_body(cls, raw: Any, call: _Call, deadline: float, limit: int, service: str, timeout: float) -> bytes:
        return b"".join(cls._chunks(raw, call, deadline, limit, service, timeout))

    @classmethod
    def _read_lines(cls, raw: Any, call: _Call, deadline: float, limit: int, service: str, timeout: float) -> None:
        """Hand each complete line to the caller as soon as it has arrived."""
        assert call.lines is not None
        pending = b""
        for chunk in cls._chunks(raw, call, deadline, limit, service, timeout):
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                call.lines.put(line.rstrip(b"\r").decode("utf-8", errors="replace"))
        if pending:
            call.lines.put(pending.decode("utf-8", errors="replace"))

    @staticmethod
    def _chunks(raw: Any, call: _Call, deadline: float, limit: int, service: str, timeout: float) -> Iterator[bytes]:
        """The body in pieces as they arrive, checking the budget and the size limit between them."""
        declared = (raw.headers.get("Content-Length") or "").strip()
        too_large = UpstreamBadResponse(f"Response body from {service} exceeds {limit} bytes", service=service,
                                        retryable=False)
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        read = getattr(raw, "read1", None) or raw.read  # read1 returns what has arrived instead of blocking
        size = 0
        while True:
            if call.abandoned or time.monotonic() >= deadline:
                raise UpstreamTimeout(f"Request timeout after {timeout:g}s", service=service)
            chunk = read(_CHUNK, decode_content=True)
            if not chunk:
                return
            size += len(chunk)
            if size > limit:
                raise too_large
            yield chunk


def build_http_client(config: Config) -> HttpClient:
    """The process's HttpClient, from :class:`llm_service.config.Config`."""
    return HttpClient(
        pool_size=config.effective_http_pool_size,
        user_agent=config.http_user_agent or f"llm-service/{__version__}",
        connect_timeout=config.http_connect_timeout,
        max_response_bytes=config.http_max_response_bytes,
        allow_private_networks=config.webhook_allow_private_networks,
    )
