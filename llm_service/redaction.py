"""Keeping secrets out of logs, results, errors and webhooks.

Two tools: :func:`sanitize` walks a JSON-like value and replaces the values of secret-named keys; and
:func:`redact_text` scrubs free text (exception messages, response bodies, URLs) of known secret values and of
credential-looking query parameters. Known secret values are registered once per process from the configuration
(:func:`register_secrets`), so even a message we did not anticipate cannot carry a configured key out.

The old service redacted by substring (``keyword`` and ``author`` were hidden); here a key is secret only when its
normalised name *is* a credential name or ends with one (``stripe_secret_key``), never because it merely contains
the letters ``key``.
"""
from __future__ import annotations

import re
import threading
from typing import Any, Iterable

REDACTED = "[REDACTED]"
_TRUNCATE_AT = 200

_SECRET_NAMES = frozenset({
    "key", "apikey", "api_key", "x_api_key", "x_api_secret", "token", "access_token", "refresh_token", "id_token",
    "auth_token", "secret", "client_secret", "webhook_secret", "password", "passwd", "pwd", "credential",
    "credentials", "auth", "authorization", "proxy_authorization", "bearer", "private_key", "cookie", "set_cookie",
    "signature", "x_webhook_signature", "webhook_signature",
})
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password", "_credentials", "_apikey")
_NOT_SECRET = frozenset({"cache_key", "idempotency_key", "primary_key", "sort_key", "partition_key"})

# key=..., api_key=..., token=... in URLs or form bodies; Authorization-style "Bearer xxx".
_QUERY_SECRET = re.compile(
    r"(?i)\b((?:api[_-]?)?key|token|access_token|secret|client_secret|password|signature|sig)=([^&\s'\"#]+)")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}")

_lock = threading.Lock()
_known_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values (API keys, shared secrets) so :func:`redact_text` removes them anywhere."""
    global _known_secrets
    with _lock:
        merged = set(_known_secrets)
        merged.update(v for v in values if v and len(v) >= 4)
        # Longest first, so a secret that contains another is removed whole.
        _known_secrets = tuple(sorted(merged, key=len, reverse=True))


def is_secret_key(name: str) -> bool:
    normalised = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    if normalised in _NOT_SECRET:
        return False
    return normalised in _SECRET_NAMES or normalised.endswith(_SECRET_SUFFIXES)


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Scrub configured secret values and credential-looking URL parameters from free text."""
    if not text:
        return text
    for secret in (*_known_secrets, *(s for s in extra_secrets if s and len(s) >= 4)):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def sanitize(value: Any, *, truncate: bool = True, _depth: int = 0) -> Any:
    """Copy a JSON-like value with secret-named keys redacted, long strings cut and secret values scrubbed."""
    if _depth > 20:
        return "...[nested too deep]"
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if is_secret_key(key):
                out[key] = REDACTED
            else:
                out[key] = sanitize(item, truncate=truncate, _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [sanitize(item, truncate=truncate, _depth=_depth + 1) for item in value]
    if isinstance(value, str):
        text = redact_text(value)
        if truncate and len(text) > _TRUNCATE_AT:
            return text[:_TRUNCATE_AT] + "...[truncated]"
        return text
    return value


def scrub_values(value: Any, secrets: Iterable[str]) -> Any:
    """Copy a JSON-like value with each of ``secrets`` replaced wherever it occurs inside a string (keys included).

    For data that arrives from outside and flows on into results, caches, prompts and webhooks, such as an upstream's
    successful answer echoing the key it was called with. Unlike :func:`sanitize` nothing else changes: no field is
    redacted for its name and nothing is cut, so the data keeps its meaning. Values shorter than 4 characters are
    ignored, as in :func:`redact_text`.
    """
    needles = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
    if not needles:
        return value

    def scrub(item: Any) -> Any:
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, REDACTED)
            return item
        if isinstance(item, dict):
            return {scrub(key): scrub(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [scrub(inner) for inner in item]
        return item

    return scrub(value)


def sanitize_mapping(value: Any) -> dict:
    """The old ``sanitize_inputs``: a null or empty argument gives ``{}``."""
    if not value:
        return {}
    if not isinstance(value, dict):
        return {"value": sanitize(value)}
    return sanitize(value)
