"""SSRF protection for user-supplied URLs (webhooks, URLs a workflow builds from user input).

Two layers, because neither alone is enough:

* :func:`check_url` runs when a URL is accepted (an API 400 is friendlier than a failed job) and catches IP
  literals in every spelling a resolver accepts plus names that already resolve somewhere private.
* The connect-time guard (:class:`GuardedHTTPAdapter`) is the real check: it looks at the address the socket is
  actually connected to, so a DNS answer that changes between the check and the connection (DNS rebinding), a
  redirect to a private address, or a URL spelling our parser reads differently from urllib3 cannot get through.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..engine.errors import BlockedAddressError, UserInputError

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
AddressPolicy = Callable[[str, int], Optional[str]]
"""``policy(peer_ip, peer_port)`` -> why the connection is refused (a noun phrase), or ``None`` to allow it."""

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not globally routable
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
# Only characters that can appear in the legacy numeric IPv4 spellings; keeps inet_aton away from hostnames
# (glibc's inet_aton would accept "1.2.3.4 anything").
_LEGACY_IPV4 = re.compile(r"^[0-9a-fA-FxX.]+$")
_ALLOW_HINT = ("private, loopback, link-local and reserved addresses are not allowed "
               "(set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to permit them)")


class UnsafeURLError(UserInputError, ValueError):
    """A user-supplied URL is not acceptable; the message is fit for an API 400 response."""


def _as_ip(ip: Union[str, IPAddress]) -> IPAddress:
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ip
    return ipaddress.ip_address(str(ip).split("%", 1)[0])


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to (mapped, NAT64, 6to4, Teredo server and client)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    found = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def refusal_reason(ip: Union[str, IPAddress]) -> Optional[str]:
    """Why a connection to ``ip`` must be refused (e.g. ``"a loopback address"``), or ``None`` if it is public."""
    try:
        addr = _as_ip(ip)
    except ValueError:
        return "not a valid IP address"
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        for inner in embedded:
            reason = refusal_reason(inner)
            if reason:
                return f"an IPv6 address embedding {inner}, {reason}"
        if embedded and (addr.ipv4_mapped is not None or addr in _NAT64_WELL_KNOWN):
            return None  # these forms *are* the embedded IPv4 address, which is public
    if addr.is_unspecified:
        return "an unspecified address"
    if addr.is_loopback:
        return "a loopback address"
    if addr in _METADATA:
        return "a link-local address (cloud metadata endpoint)"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.version == 4 and addr in _SHARED_ADDRESS_SPACE:
        return "a shared address space (carrier-grade NAT) address"
    if addr.is_private:
        return "a private address"
    if addr.is_reserved:
        return "a reserved address"
    if not addr.is_global:
        return "a non-public address"
    return None


def is_refused_address(ip: Union[str, IPAddress]) -> bool:
    """True for anything not globally routable; see :func:`refusal_reason` for the why."""
    return refusal_reason(ip) is not None


def parse_ip_literal(host: str) -> Optional[IPAddress]:
    """The address ``host`` denotes when it is an IP literal in any spelling a resolver accepts, else ``None``.

    Covers dotted, decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.0.0.1``), short (``127.1``),
    the fully qualified form with one trailing dot (``127.0.0.1.``, which many resolvers and clients treat as that
    address), bracketed IPv6 with or without a zone id, and IPv4-mapped IPv6.
    """
    text = (host or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # IPv6 zone id (also URL-encoded as %25)
    if text.endswith(".") and _LEGACY_IPV4.match(text[:-1] or "-"):
        text = text[:-1]
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """Addresses ``host`` resolves to, or ``[]`` when it does not resolve within ``timeout``.

    getaddrinfo has no timeout of its own, so it runs in a (green, when monkey-patched) thread we stop waiting for.
    """
    answers: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        answers.extend(str(info[4][0]) for info in infos)

    worker = threading.Thread(target=lookup, name="ssrf-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    return list(answers) if not worker.is_alive() else []


def check_url(url: str, *, allow_private: bool, resolve: bool = True, resolve_timeout: float = 2.0,
              label: str = "webhook_url") -> None:
    """Refuse a user-supplied URL early, with a message naming ``label``; raises :class:`UnsafeURLError`.

    A name that does not resolve is allowed (it may resolve later, and the connect-time guard still applies).
    ``allow_private`` skips the address checks but still insists on an http(s) URL with a host.
    """
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"{label} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURLError(f"{label} must use http or https, got {scheme + ':' if scheme else 'no scheme'}")
    host = parts.hostname
    if not host:
        raise UnsafeURLError(f"{label} must include a host name")
    if allow_private:
        return
    literal = parse_ip_literal(host)
    if literal is not None:
        reason = refusal_reason(literal)
        if reason:
            raise UnsafeURLError(f"{label} host {host} is {reason}; {_ALLOW_HINT}")
        return
    if not resolve:
        return
    for address in _resolve(host, port or (443 if scheme == "https" else 80), resolve_timeout):
        reason = refusal_reason(address)
        if reason:
            raise UnsafeURLError(f"{label} host {host} resolves to {address}, {reason}; {_ALLOW_HINT}")


# --------------------------------------------------------------------------------------------------------------
# Connect-time guard

def default_policy(ip: str, port: int) -> Optional[str]:
    return refusal_reason(ip)


class _PeerCheck:
    """Mixin for urllib3 connections: vet the connected peer before a byte (or a TLS hello) is sent."""

    address_policy: AddressPolicy = staticmethod(default_policy)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            peer = sock.getpeername()
            ip, port = str(peer[0]).split("%", 1)[0], int(peer[1])
            reason = self.address_policy(ip, port)
        except BaseException:
            sock.close()
            raise
        if reason:
            sock.close()
            raise BlockedAddressError(f"Refused to connect to {ip}: it is {reason}; {_ALLOW_HINT}",
                                      details={"address": ip})
        return sock


def guarded_pool_classes(policy: AddressPolicy) -> dict[str, type]:
    """urllib3 pool classes (by scheme) whose connections apply ``policy`` to the connected peer."""
    bound = {"address_policy": staticmethod(policy)}
    http_conn = type("GuardedHTTPConnection", (_PeerCheck, HTTPConnection), bound)
    https_conn = type("GuardedHTTPSConnection", (_PeerCheck, HTTPSConnection), bound)
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class GuardedHTTPAdapter(HTTPAdapter):
    """An HTTPAdapter whose every new connection (each redirect hop included) passes the address policy."""

    def __init__(self, *, policy: Optional[AddressPolicy] = None, **kwargs) -> None:
        # Set before super().__init__, which calls init_poolmanager.
        self._address_policy = policy or default_policy
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs) -> None:  # type: ignore[override]
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = guarded_pool_classes(self._address_policy)
