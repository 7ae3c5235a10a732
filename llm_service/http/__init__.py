"""The process's HTTP helper and SSRF guard: the only place that owns a ``requests.Session``."""
from .client import HttpClient, HttpResponse, build_http_client
from .ssrf import (
                   AddressPolicy,
                   GuardedHTTPAdapter,
                   UnsafeURLError,
                   check_url,
                   is_refused_address,
                   parse_ip_literal,
                   refusal_reason,
)

__all__ = [
    "AddressPolicy", "GuardedHTTPAdapter", "HttpClient", "HttpResponse", "UnsafeURLError", "build_http_client",
    "check_url", "is_refused_address", "parse_ip_literal", "refusal_reason",
]
