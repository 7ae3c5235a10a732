"""Webhook URL syntax and normal form, as the old API stored them (``https://example.com`` -> ``https://example.com/``).

Only the shape is checked here (absolute http/https with a host, at most 2083 characters); whether the address is
acceptable is the SSRF check's job (``llm_service.http.ssrf.check_url``), which the submit endpoint runs next.
"""
from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from ..http.ssrf import parse_ip_literal

MAX_URL_LENGTH = 2083
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_HOST = re.compile(r"^[a-z0-9\-._~!$&'()*+,;=]+$")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class InvalidURL(ValueError):
    """The text is not an absolute http(s) URL; the message says what to fix."""


def _host(hostname: str) -> str:
    literal = parse_ip_literal(hostname)
    if literal is not None:
        return f"[{literal.compressed}]" if literal.version == 6 else str(literal)
    if hostname.startswith("["):
        raise InvalidURL("the host is not a valid IPv6 address")
    try:
        ascii_host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidURL("the host name is not valid") from None
    if not _HOST.match(ascii_host) or ascii_host.strip(".") == "":
        raise InvalidURL("the host name contains characters that are not allowed")
    return ascii_host


def normalize_http_url(text: str) -> str:
    """The URL in normal form: lower-case scheme and host, IP literals in canonical spelling, IDNA host, default
    port dropped, empty path as ``/``, non-ASCII in path/query/fragment percent-encoded.

    The 2083-character limit applies to the URL as sent, as documented: the normal form may be a little longer (the
    ``/`` of an empty path, percent-escapes), which is not the client's doing and must not turn a valid URL into a
    422."""
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    text = text.strip()
    if _FORBIDDEN.search(text):
        raise InvalidURL("the URL contains spaces, backslashes or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"the URL cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL("the URL must start with http:// or https://")
    if not parts.netloc or not parts.hostname:
        raise InvalidURL("the URL must include a host")
    raw_host = parts.netloc.rpartition("@")[2]
    bracketed = raw_host.startswith("[")
    host = _host(f"[{parts.hostname}]" if bracketed else parts.hostname)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{quote(userinfo, safe=':%!$&()*+,;=-._~')}@" if userinfo else "") + host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    url = f"{scheme}://{netloc}{path}"
    if parts.query:
        url += "?" + quote(parts.query, safe=_QUERY_SAFE)
    if parts.fragment:
        url += "#" + quote(parts.fragment, safe=_QUERY_SAFE)
    return url
