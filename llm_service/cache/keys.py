"""The cache key, computed exactly as the old service did so the meaning of a key never changes.

Parameters are serialised canonically (recursively sorted keys, no spaces, ASCII escaping) before hashing, so the
order in which a workflow lists its parameters never matters while any change of value gives a different key.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping


def canonical_json(value: Any) -> str:
    """One text per value: raises TypeError/ValueError for values JSON cannot express (nothing is guessed)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(service: str, operation: str, params: Mapping[str, Any], upstream: str = "") -> str:
    """64 lowercase hex characters: SHA-256 of ``"<service>|<operation>|<canonical params JSON>|<upstream>"``.

    ``upstream`` names who answers (a base URL): the same question asked of the sandbox and of the real service
    must never share an answer. Without it the key is the old one.
    """
    text = f"{service}|{operation}|{canonical_json(params)}" + (f"|{upstream}" if upstream else "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
