"""JSON for the job store's values: one encoder, a memo that encodes a part shared by several values once, and a
decoder without ``json.loads``'s per-call overhead.

Every hash value and list entry the store writes is JSON (see ``store.py``). One execution's writes repeat the
same step outputs: a step's entry (the ``steps`` list) and its full record (kept for re-runs) hold the same output
object, the record spreads the output's fields again and may alias its content, and the job's result lists every
entry once more. Encoded in full each time, an emergency_contacts job's finish encoded about 90 KB of JSON, 60 KB
of it the text of a step output already encoded in the same call, and JSON was the largest cost of the worker's
finish. :class:`SharedEncoding` encodes each shared object once and splices its text into every value that holds
it; the text is byte for byte what :func:`encode` gives, so what is stored (and every reader) is unchanged.

Reading a job decodes each of its ~40 hash fields on its own (a claim, every ``GET /jobs/<id>``); ``json.loads``
spends more on checks around the C scanner than the scanner spends on such short values, so :func:`decode` calls
the scanner directly and leaves anything unusual to ``json.loads``.
"""
from __future__ import annotations

import json
from json.scanner import make_scanner
from typing import Any

# json.dumps with options builds a new encoder per call (a measurable part of a job's finish); one instance gives
# the same output.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_encode_str = json.encoder.encode_basestring  # what _ENCODER uses for strings and keys (ensure_ascii=False)
_LITERALS = {None: "null", True: "true", False: "false"}
_scan = make_scanner(json.JSONDecoder())  # what json.loads runs, with json.loads's default options


def encode(value: Any) -> str:
    """``value`` as the store writes it: compact JSON, non-ASCII kept, NaN and infinities refused (ValueError),
    values JSON cannot hold refused (TypeError)."""
    return _ENCODER.encode(value)


def decode(text: str) -> Any:
    """``json.loads(text)``: the same value, or the same error."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):  # not a JSON value at the start (whitespace, or invalid): as json.loads says
        return json.loads(text)
    return value if end == len(text) else json.loads(text)  # trailing whitespace, or extra data (an error)


class SharedEncoding:
    """:func:`encode` for the values of one write, remembering the text of every container and long string by
    identity, so an object held by several values (or reached twice) is encoded once.

    Dicts with string keys and lists are spliced from their items' texts down to ``depth`` levels, which is where
    sharing is looked for; below that an item is encoded in one piece (and remembered as a whole). The memo holds
    each object it remembers, so an id is never reused by another object while it lives.

    An object must not change while the memo remembers it. The worker keeps one per running job
    (``tasks/runtime.ProgressBuffer``), so the finish finds the entries that earlier progress saves encoded: what
    it holds are finished steps' entries, records and outputs, which do not change once the step has finished (the
    saved entry and record are already what the API shows and what a re-run reuses). Anything else gets a new
    one per write (the store's default).
    """

    LONG_STRING = 256  # shorter strings are re-encoded: cheaper than remembering them

    def __init__(self) -> None:
        self._known: dict[int, tuple[Any, str]] = {}

    def encode(self, value: Any, depth: int) -> str:
        known = self._known.get(id(value))
        if known is not None:
            return known[1]
        kind = type(value)
        if kind is str:
            text = _encode_str(value)
            if len(value) >= self.LONG_STRING:
                self._known[id(value)] = (value, text)
            return text
        if kind is int:
            return int.__repr__(value)
        if kind is bool or value is None:
            return _LITERALS[value]
        if depth > 0 and kind is dict:
            try:
                text = "{" + ",".join([_encode_str(key) + ":" + self.encode(item, depth - 1)
                                       for key, item in value.items()]) + "}"
            except TypeError:  # a key that is not a string (the encoder converts it), or a value it refuses
                text = encode(value)  # (which it refuses again here)
        elif depth > 0 and kind is list:
            text = "[" + ",".join([self.encode(item, depth - 1) for item in value]) + "]"
        else:
            text = encode(value)  # floats, tuples, deeper containers, other types: the encoder's own rules
        if kind is dict or kind is list or kind is tuple:
            self._known[id(value)] = (value, text)
        return text
