"""Keeping secrets out of logs, results, errors and webhooks.

Two tools: :func:`sanitize` walks a JSON-like value and replaces the values of secret-named keys; and
:func:`redact_text` scrubs free text (exception messages, response bodies, URLs) of known secret values and of
credential-looking query parameters. Known secret values are registered once per process from the configuration
(:func:`register_secrets`), so even a message we did not anticipate cannot carry a configured key out.

Secret values are matched as whole tokens: not where the letters merely occur inside a longer word or token (a
sandbox key ``sandbox`` must not turn "the sandbox upstream" into "the [REDACTED] upstream"), and values shorter
than :data:`MIN_SECRET_LENGTH` are never treated as secrets (no real credential is that short, and scrubbing short
values destroys ordinary text).

The old service redacted by substring (``keyword`` and ``author`` were hidden); here a key is secret only when its
normalised name *is* a credential name or ends with one (``stripe_secret_key``), never because it merely contains
the letters ``key``.
"""
from __future__ import annotations

import functools
import re
import threading
from typing import Any, Iterable

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8
_TRUNCATE_AT = 200
# A secret value counts where it is not glued to further letters or digits (a percent-escape before it is a
# boundary too: ``%3D<key>`` is a URL-encoded ``=<key>``).
_BEFORE = r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))"
_AFTER = r"(?![A-Za-z0-9])"

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
_known_pattern: _Matcher | None = None


def secret_values(values: Iterable[str]) -> tuple[str, ...]:
    """The values long enough to be secrets, longest first (so a secret that contains another goes whole)."""
    return tuple(sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True))


class _Matcher:
    """Whole-token replacement of a set of secrets; a plain substring test first keeps the common case (no secret
    in the text) as cheap as ``in``."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        # A run of secrets glued together (an echo of two keys) counts as one token.
        self.pattern = re.compile(_BEFORE + "(?:" + "|".join(re.escape(s) for s in secrets) + ")+" + _AFTER)

    def sub(self, text: str) -> str:
        if any(secret in text for secret in self.secrets):
            return self.pattern.sub(REDACTED, text)
        return text


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> _Matcher | None:
    return _Matcher(secrets) if secrets else None


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values (API keys, shared secrets) so :func:`redact_text` removes them anywhere."""
    global _known_secrets, _known_pattern
    with _lock:
        _known_secrets = secret_values((*_known_secrets, *values))
        _known_pattern = _pattern(_known_secrets)


def scrub_secret_values(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Replace each registered secret, and each of ``extra_secrets``, where it stands as a whole token."""
    pattern = _known_pattern
    extra = secret_values(extra_secrets)
    if extra:
        pattern = _pattern(secret_values((*_known_secrets, *extra)))
    return text if pattern is None else pattern.sub(text)


def is_secret_key(name: str) -> bool:
    normalised = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    if normalised in _NOT_SECRET:
        return False
    return normalised in _SECRET_NAMES or normalised.endswith(_SECRET_SUFFIXES)


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Scrub configured secret values and credential-looking URL parameters from free text."""
    if not text:
        return text
    text = scrub_secret_values(text, extra_secrets)
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
    redacted for its name and nothing is cut, so the data keeps its meaning. Matching is by whole token and values
    shorter than :data:`MIN_SECRET_LENGTH` are ignored, as in :func:`redact_text`.
    """
    pattern = _pattern(secret_values(secrets))
    if pattern is None:
        return value

    def scrub(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(item)
        if isinstance(item, dict):
            return {scrub(key): scrub(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [scrub(inner) for inner in item]
        return item

    return scrub(value)


def scrub_parsed_json(data: Any, body: bytes, secrets: Iterable[str]) -> Any:
    """:func:`scrub_values` for ``data`` parsed from the JSON document ``body``, without walking it when no secret
    can be inside.

    Why: the walk costs a Python call per string, a large part of handling each upstream answer, while a secret in
    an answer is rare. A body that ``json.loads`` read as UTF-16 or UTF-32 holds zero bytes (JSON's structure is
    ASCII); without them it was UTF-8, and without a backslash it has no escape sequences, so every string (key or
    value) in ``data`` is a verbatim slice of ``body``: a secret missing from the body's bytes is in none of them.
    """
    if b"\\" not in body and b"\x00" not in body:
        try:
            needles = [secret.encode("utf-8") for secret in secret_values(secrets)]
        except UnicodeEncodeError:  # a lone surrogate: let the walk decide
            needles = None
        if needles is not None and not any(needle in body for needle in needles):
            return data
    return scrub_values(data, secrets)


def sanitize_mapping(value: Any) -> dict:
    """The old ``sanitize_inputs``: a null or empty argument gives ``{}``."""
    if not value:
        return {}
    if not isinstance(value, dict):
        return {"value": sanitize(value)}
    return sanitize(value)
