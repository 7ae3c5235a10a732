"""A job's live event stream (``GET /api/v1/jobs/<id>/events``, server-sent events).

The events live in the job's Redis Stream (written by the worker in the same round trips as its progress, and by
the store's terminal transitions), so any API process serves any job and a client that reconnects, to this process
or another one after a restart, resumes from ``Last-Event-ID``. Each open stream is a loop of short blocking reads
on its own Redis pool (:meth:`ApiContext.stream_redis`); the API's gevent worker holds hundreds of them per process
(``gunicorn.conf.py``).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Iterator

from flask import Blueprint, Response, request

from ...jobs import TERMINAL_STATUSES, StoreUnavailable
from ...job_events import TERMINAL
from ...sse import format_event as sse
from ..context import api_context
from ..endpoints import Failure, Reply, endpoint
from ..errors import ApiError
from ..schemas import EXAMPLE_JOB_ID
from .jobs import _INVALID_ID, _JOB_ID_PARAM, _NOT_FOUND, _get_job, status_body

log = logging.getLogger("llm_service.api")
bp = Blueprint("events", __name__)

TERMINAL_EVENTS = frozenset(TERMINAL)
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
MAX_BLOCK_SECONDS = 2.0  # a blocking read never waits longer, so an idle stream re-checks its job this often
RETRY_MS = 3000  # the reconnection delay an EventSource uses after the connection drops

EXAMPLE_STREAM = (
    "retry: 3000\n\n"
    "id: 1733312000000-0\nevent: step.started\n"
    'data: {"step_id":"fetch_weather","name":"Fetch the weather","index":1,"total":8}\n\n'
    "id: 1733312000420-0\nevent: step.completed\n"
    'data: {"step_id":"fetch_weather","name":"Fetch the weather","index":1,"total":8,"steps_completed":1,'
    '"status":"completed","duration_ms":412,"cached":false}\n\n'
    "id: 1733312001000-0\nevent: llm.token\n"
    'data: {"step_id":"generate_contacts","delta":"1. Call 911"}\n\n'
    ": keep-alive\n\n"
    "id: 1733312009000-0\nevent: job.completed\n"
    f'data: {{"status":"completed","job_id":"{EXAMPLE_JOB_ID}","result":{{"success":true}}}}\n\n')


@bp.get("/jobs/<job_id>/events")
@endpoint(
    summary="Live events of a job (server-sent events)",
    description="A `text/event-stream` of the job's events, each with a strictly increasing `id`: "
                "`step.started`, `step.completed`, `llm.token` (streamed LLM text, for steps with "
                "`\"stream\": true`), `job.requeued` (a lost worker's job runs again), and one terminal "
                "`job.completed` / `job.failed` / `job.cancelled` whose data is the status endpoint's answer; the "
                "server closes the stream after it. A stream opened later replays from the start (or after the "
                "`Last-Event-ID` header's id). A `: keep-alive` comment comes at least every "
                "EVENTS_KEEPALIVE_SECONDS (15 s).",
    tag="jobs", path_params=_JOB_ID_PARAM,
    failures=[_INVALID_ID, _NOT_FOUND,
              Failure(400, "InvalidLastEventID", "Last-Event-ID is not an id this stream sent",
                      {"message": "Invalid Last-Event-ID: 'x' (expected an event id like 1733312000000-0)",
                       "last_event_id": "x"})],
    replies=[Reply(200, "The event stream", None, EXAMPLE_STREAM, media_type="text/event-stream")])
def job_events(job_id: str) -> Response:
    canonical, _ = _get_job(job_id)
    after = (request.headers.get("Last-Event-ID") or "").strip() or "0-0"
    if not EVENT_ID.match(after):
        raise ApiError(400, "InvalidLastEventID",
                       f"Invalid Last-Event-ID: '{after[:60]}' (expected an event id like 1733312000000-0)",
                       last_event_id=after[:60])
    ctx = api_context()
    stream = EventStream(ctx.store, ctx.stream_redis(), canonical, after, ctx.config.events_keepalive_seconds,
                         lambda record: status_body(canonical, record))
    return Response(stream.lines(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class EventStream:
    """One client's stream: replay, then follow with short blocking reads until the terminal event."""

    def __init__(self, store: Any, client: Any, job_id: str, after: str, keepalive: float,
                 summary: Callable[[dict], dict]) -> None:
        self.store, self.client, self.job_id, self.after = store, client, job_id, after
        self.keepalive, self.summary = keepalive, summary
        self.block_ms = max(1, int(min(keepalive, MAX_BLOCK_SECONDS) * 1000))

    def lines(self) -> Iterator[str]:
        yield f"retry: {RETRY_MS}\n\n"  # also sends the headers now, before the first event
        quiet_since = time.monotonic()
        try:
            while True:
                events = self.store.events(self.job_id, self.after, block_ms=self.block_ms, client=self.client)
                if not events:
                    ending = self._ending()
                    if ending is not None:
                        yield from ending
                        return
                    if time.monotonic() - quiet_since >= self.keepalive:
                        yield ": keep-alive\n\n"
                        quiet_since = time.monotonic()
                    continue
                for event_id, name, data in events:
                    self.after = event_id
                    if name in TERMINAL_EVENTS:
                        yield sse(name, self._terminal_data(data), event_id)
                        return
                    yield sse(name, data, event_id)
                quiet_since = time.monotonic()
        except StoreUnavailable as exc:  # the client reconnects with Last-Event-ID and resumes
            log.warning("event stream of job %s ended: %s", self.job_id, exc, extra={"job_id": self.job_id})

    def _terminal_data(self, data: dict) -> dict:
        record = self.store.get(self.job_id)
        return {**data, **self.summary(record)} if record is not None else data

    def _ending(self) -> list[str] | None:
        """When nothing came: the job was deleted (close), or it ended without a terminal event in its stream (a
        job finished before streams existed: replay is done, so send a terminal event without an id); else None.
        A terminal event is written in the same atomic step as the status, so a terminal status read here means
        it is in the stream already, and one more read returns it."""
        status = self.store.status(self.job_id)
        if status is None:
            return []
        if status not in TERMINAL_STATUSES:
            return None
        out = []
        for event_id, name, data in self.store.events(self.job_id, self.after, client=self.client):
            if name in TERMINAL_EVENTS:
                return [*out, sse(name, self._terminal_data(data), event_id)]
            out.append(sse(name, data, event_id))
        return [*out, sse(f"job.{status}", self._terminal_data({"status": status}))]
