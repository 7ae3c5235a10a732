"""Requests prepared for the adapter directly, without ``requests.Session.request``'s per-call machinery.

Why: profiling the worker (issue 12) showed ``Session.request`` costing more than the HTTP exchange itself: for
each call it re-parses and re-quotes the URL, merges four layers of settings through ``Mapping`` checks (slow
``typing`` protocol checks on Python 3.11), builds and merges cookie jars, looks up netrc and walks the proxy
environment. Our calls are few shapes repeated many times (an operator-configured base URL and path, query
parameters, a JSON or bytes body), so :class:`RequestPreparer` builds the same ``PreparedRequest`` requests would
build with the expensive, per-URL parts computed once, and the caller hands it to the session's adapter.

It only takes the calls whose result it can reproduce exactly; anything else (redirect following, a URL with
credentials or a fragment, netrc credentials for the host, form or streamed bodies, a URL requests
would refuse) returns ``None`` and goes through ``Session.request`` as before. A test compares both builds over
many shapes, so the two paths cannot drift apart silently. Sessions keep no cookies (``no_cookies``), which is
what makes skipping the cookie merge exact.
"""
from __future__ import annotations

import http.cookiejar
import os
from typing import Any, Mapping, Optional
from urllib.parse import urlencode, urlsplit

import requests
from requests.compat import json as complexjson
from requests.models import RequestEncodingMixin
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_environ_proxies, get_netrc_auth

_MEMO = 256  # distinct URLs / hosts remembered per session: operator-configured upstreams, so few
_BODY_METHODS_WITHOUT_LENGTH = ("GET", "HEAD")


def no_cookies(session: requests.Session) -> None:
    """Make ``session`` refuse every cookie.

    Why: one session serves every job of the process, so a cookie set by an upstream for one job would be sent
    on the next job's calls (state shared across tenants). Our upstreams are stateless APIs authenticated by keys.
    """
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _encode_query(params: Any) -> str:
    """requests' query encoding, with a direct path for the usual ``{name: scalar or list}`` dict.

    Why: requests' general encoder runs several ``Mapping``/``Iterable`` protocol checks per parameter, which cost
    more than the encoding itself. ``None`` values are dropped and lists repeat the name, as requests does.
    """
    if type(params) is not dict:
        return RequestEncodingMixin._encode_params(params)
    pairs = []
    for name, value in params.items():
        if type(name) is not str:
            return RequestEncodingMixin._encode_params(params)
        for item in (value if type(value) in (list, tuple) else (value,)):
            if item is None:
                continue
            if type(item) not in (str, int, float, bytes):
                return RequestEncodingMixin._encode_params(params)
            pairs.append((name, item))
    return urlencode(pairs)


class RequestPreparer:
    """Builds ``PreparedRequest`` objects for one session; see the module docstring."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._urls: dict[str, str] = {}  # URL as given -> as requests prepares it
        self._environment: dict[str, tuple[bool, dict[str, str]]] = {}  # netloc -> (netrc credentials, proxies)

    def prepare(self, method: str, url: str, *, params: Any, json: Any, data: Any,
                headers: Optional[Mapping[str, str]]) -> Optional[requests.PreparedRequest]:
        """The request ``session.request`` would send, or None when only ``session.request`` can build it."""
        session = self.session
        if session.auth is not None or session.params or session.proxies or session.hooks["response"]:
            return None
        base = self._url(url)
        if base is None:
            return None
        body = self._body(json, data)
        if body is False:
            return None
        query = _encode_query(params) if params else None
        prepared = requests.PreparedRequest()
        prepared.method = method.upper()
        prepared.url = base if not query else f"{base}{'&' if '?' in base else '?'}{query}"
        merged = CaseInsensitiveDict(session.headers)
        for name, value in (headers or {}).items():
            merged[name] = value
        prepared.headers = CaseInsensitiveDict()
        for name, value in merged.items():
            if value is None:
                continue
            check_header_validity((name, value))
            prepared.headers[name] = value
        content, content_type = body
        prepared.body = content
        if content:
            prepared.headers["Content-Length"] = str(len(content))
        elif content is None and prepared.method not in _BODY_METHODS_WITHOUT_LENGTH \
                and prepared.headers.get("Content-Length") is None:
            prepared.headers["Content-Length"] = "0"
        if content_type and "content-type" not in prepared.headers:
            prepared.headers["Content-Type"] = content_type
        prepared.hooks = {"response": []}
        prepared._cookies = session.cookies  # empty: the session refuses cookies (no_cookies)
        return prepared

    def send_settings(self, url: str) -> Optional[dict[str, Any]]:
        """``verify``, ``cert`` and ``proxies`` for ``adapter.send``, as ``Session.request`` would merge them, or
        None when netrc holds credentials for the host (those calls keep requests' own path).

        The proxy variables and netrc are read once per host: the process's environment is its configuration,
        read at start (``config.py``), and requests would otherwise walk all of ``os.environ`` twice per call.
        """
        session = self.session
        verify = session.verify
        proxies: dict[str, str] = {}
        if session.trust_env:
            netloc = urlsplit(url).netloc
            found = self._environment.get(netloc)
            if found is None:
                netrc_auth = bool(get_netrc_auth(url))
                found = (netrc_auth, {} if netrc_auth else get_environ_proxies(url))
                if len(self._environment) < _MEMO:
                    self._environment[netloc] = found
            netrc_auth, proxies = found
            if netrc_auth:
                return None
            if verify is True or verify is None:  # read per call, as requests reads them
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return {"verify": verify, "cert": session.cert, "proxies": dict(proxies)}

    def _url(self, url: str) -> Optional[str]:
        found = self._urls.get(url)
        if found is not None:
            return found
        if not isinstance(url, str) or "#" in url or "@" in url or not url.isascii():
            return None
        probe = requests.PreparedRequest()
        try:
            probe.prepare_url(url, None)
        except Exception:  # requests raises its own errors on its own path
            return None
        if "#" in probe.url or "@" in probe.url:
            return None
        if len(self._urls) < _MEMO:
            self._urls[url] = probe.url
        return probe.url

    @staticmethod
    def _body(json: Any, data: Any) -> Any:
        """``(body, content type)`` as requests' ``prepare_body`` makes them, or False when it is not ours to do."""
        if data is not None and not isinstance(data, bytes):
            return False
        if not data and json is not None:
            try:
                body = complexjson.dumps(json, allow_nan=False)
            except ValueError:
                return False
            return (body if isinstance(body, bytes) else body.encode("utf-8")), "application/json"
        return (data if data else None), None
