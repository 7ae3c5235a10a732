"""Server-sent events (``text/event-stream``), both ways: writing the job event stream (API) and reading one
incrementally (the LLM providers' streamed answers, ``llm-service watch``), so every part of the service frames
and parses events the same way (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator


def format_event(name: str, data: Any, event_id: str | None = None) -> str:
    """One event. JSON escapes line breaks, so ``data`` is always a single ``data:`` line."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


@dataclass
class Event:
    """A parsed event (``data`` as sent, lines joined by newlines) or, with ``comment`` set, a comment line."""
    event: str | None = None
    data: str = ""
    id: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


class SseParser:
    """Incremental: feed it lines as they arrive (without their line break), get events when they complete."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._event: str | None = None
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line == "":
            if not self._data and self._event is None:
                self._reset()
                return None
            done = Event(event=self._event, data="\n".join(self._data), id=self._id)
            self._reset()
            return done
        if line.startswith(":"):
            return Event(comment=line[1:].strip())
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def events(self, lines: Iterable[str]) -> Iterator[Event]:
        for line in lines:
            found = self.feed(line.rstrip("\r"))
            if found is not None:
                yield found


def parse_sse(text: str) -> list[dict]:
    """A whole stream at once (tests, replays): events as dicts with JSON data decoded; comments as
    ``{"comment": ...}``."""
    out: list[dict] = []
    for item in SseParser().events(text.split("\n")):
        if item.comment is not None:
            out.append({"comment": item.comment})
        else:
            try:
                data = item.json()
            except ValueError:
                data = item.data
            out.append({"id": item.id, "event": item.event, "data": data})
    return out
