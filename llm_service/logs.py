"""Structured logs on stderr: one JSON object per line, every message scrubbed of secrets.

Events carry their fields as ``extra`` (``job_id``, ``step_id``, ``duration_ms``, ``status``...) so a log
pipeline can filter on them; :func:`event` is the one way code emits such an event.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

from .redaction import redact_text, sanitize

# Attributes every LogRecord has; anything else on a record came from ``extra`` and is an event field.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime",
                                                                                           "taskName"}


_PLAIN = (int, float, bool)
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                # Numbers and flags cannot carry a secret: most event fields are, and skip the walk.
                payload[key] = value if type(value) in _PLAIN else sanitize(value, truncate=False)
        if record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        return _ENCODER.encode(payload)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
                  and v is not None}
        if fields:
            text += " " + " ".join(f"{k}={sanitize(v, truncate=False)}" for k, v in fields.items())
        return redact_text(text)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Route every logger to one stderr handler. Idempotent (safe to call from CLI, API and worker)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_llm_service", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._llm_service = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Emit one structured event, e.g. ``event(log, "job.state", job_id=..., status="completed")``."""
    logger.log(level, name, extra={"event": name, **fields})
