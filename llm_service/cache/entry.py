"""What both cache implementations store and report, so the in-process fallback behaves like Redis.

An entry is the JSON text ``{"data", "params", "created_at"}``. Storing text (not the live object) means a caller
that mutates what ``get`` returned cannot change the cache, and a value JSON cannot express is refused at ``set``
time in every implementation, not only in Redis.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any, Iterable, Mapping

from llm_service.cache.keys import cache_key
from llm_service.redaction import sanitize

logger = logging.getLogger("llm_service.cache")


def key_or_none(service: str, operation: str, params: Mapping[str, Any], upstream: str = "") -> str | None:
    """The cache key, or None (logged) when the parameters cannot be serialised: such a lookup is uncacheable."""
    try:
        return cache_key(service, operation, params, upstream)
    except (TypeError, ValueError) as exc:
        logger.warning("Not caching %s.%s: parameters are not JSON-serialisable (%s)", service, operation,
                       type(exc).__name__)
        return None


def encode_entry(service: str, operation: str, params: Mapping[str, Any], data: Any,
                 created_at: float) -> str | None:
    """The stored text, or None (logged) when ``data`` is not JSON-serialisable: such values are not cached."""
    try:
        return json.dumps({"data": data, "params": sanitize(params, truncate=False), "created_at": created_at},
                          separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        logger.warning("Not caching %s.%s: response is not JSON-serialisable (%s)", service, operation,
                       type(exc).__name__)
        return None


def decode_entry(raw: str | bytes) -> Any:
    """The cached data; raises ValueError for text that is not an entry (treated as a miss by callers)."""
    doc = json.loads(raw)
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError("cache entry has no data")
    return doc["data"]


def build_stats(entries: Iterable[tuple[str, str]], counters: Mapping[str, tuple[int, int]],
                service: str | None = None) -> dict[str, Any]:
    """``{"total_entries", "total_hits", "total_misses", "services": {name: {..., "operations": {op: n}}}}``.

    ``entries`` yields one ``(service, operation)`` per live entry; ``counters`` maps service -> (hits, misses).
    """
    operations: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry_service, operation in entries:
        if service is None or entry_service == service:
            operations[entry_service][operation] += 1
    names = set(operations) | {name for name in counters if service is None or name == service}
    services: dict[str, Any] = {}
    for name in sorted(names):
        hits, misses = counters.get(name, (0, 0))
        ops = dict(sorted(operations.get(name, {}).items()))
        services[name] = {"total_entries": sum(ops.values()), "total_hits": hits, "total_misses": misses,
                          "operations": ops}
    return {
        "total_entries": sum(s["total_entries"] for s in services.values()),
        "total_hits": sum(s["total_hits"] for s in services.values()),
        "total_misses": sum(s["total_misses"] for s in services.values()),
        "services": services,
    }
