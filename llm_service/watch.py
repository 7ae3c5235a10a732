"""Following a run in a terminal: ``llm-service watch JOB_ID`` (a job's event stream from the API) and
``llm-service run --progress`` (a local run, on stderr). Both print the same view of the same events: a line per
finished step and streamed LLM text as it arrives. On a TTY the running step shows on a status line that the next
output replaces and marks are coloured; through a pipe the output is plain lines, free of control codes.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Mapping, TextIO

from .job_events import JOB_REQUEUED, LLM_TOKEN, STEP_COMPLETED, STEP_STARTED, TERMINAL, EventRecorder

EXIT_COMPLETED, EXIT_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 3
EXIT_CODES = {"completed": EXIT_COMPLETED, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
RECONNECTS = 5  # a dropped stream is resumed (Last-Event-ID) this many times in a row before giving up
_MARKS = {"completed": ("ok", "32"), "failed": ("FAILED", "31"), "skipped": ("skipped", "33"),
          "cancelled": ("cancelled", "33")}


class ProgressView:
    """Renders job events on ``out``."""

    def __init__(self, out: TextIO, *, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self._status = False  # a TTY status line is showing
        self._text_of: str | None = None  # the step whose streamed text is being printed
        self._names: dict[str, str] = {}

    def show(self, name: str, data: Mapping[str, Any]) -> None:
        if name == STEP_STARTED:
            self._names[data["step_id"]] = data.get("name") or data["step_id"]
            if self.tty and self._text_of is None:  # never inside streamed text
                self._clear()
                self._write(f"\x1b[2m[{data['index']}/{data['total']}] {self._names[data['step_id']]} ...\x1b[0m")
                self._status = True
        elif name == STEP_COMPLETED:
            self._end_text()
            mark, colour = _MARKS.get(data.get("status"), (data.get("status"), "0"))
            duration = f" {data['duration_ms']} ms" if data.get("duration_ms") is not None else ""
            cached = " (cached)" if data.get("cached") else ""
            self._line(f"[{data.get('index') or data.get('steps_completed')}/{data.get('total')}] "
                       f"{self._paint(mark, colour)} {data.get('name') or data['step_id']}{duration}{cached}")
        elif name == LLM_TOKEN:
            if self._text_of != data["step_id"]:
                self._end_text()
                self._line(f"--- {self._names.get(data['step_id'], data['step_id'])} ---")
                self._text_of = data["step_id"]
            self._write(data["delta"])
        elif name == JOB_REQUEUED:
            self._end_text()
            self._line(f"job {self._paint('requeued', '33')}: its worker stopped; it runs again from the start")
        elif name in TERMINAL:
            self._end_text()
            status = TERMINAL[name]
            mark, colour = _MARKS[status]
            detail = data.get("error_message") if status != "completed" else None
            took = f" in {data['duration_ms'] / 1000:.1f} s" if data.get("duration_ms") is not None else ""
            self._line(f"job {self._paint(mark, colour)}{took}" + (f": {detail}" if detail else ""))

    def _paint(self, text: str, colour: str) -> str:
        return f"\x1b[{colour}m{text}\x1b[0m" if self.tty else text

    def _end_text(self) -> None:
        if self._text_of is not None:
            self._text_of = None
            self._write("\n")

    def _clear(self) -> None:
        if self._status:
            self._write("\r\x1b[2K")
            self._status = False

    def _line(self, text: str) -> None:
        self._clear()
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


class RunProgress:
    """The engine's run listener for ``llm-service run --progress``: the same events a job publishes, shown as
    they happen."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view
        self._events = EventRecorder()

    def step_started(self, step_id: str, position: int, total: int, name: str) -> None:
        self.view.show(*self._events.started(step_id, position, total, name))

    def step_finished(self, step_id: str, finished: int, total: int, entry: Mapping[str, Any]) -> None:
        self.view.show(*self._events.finished(step_id, finished, total, entry))

    def llm_token(self, step_id: str, delta: str) -> None:
        self.view.show(LLM_TOKEN, {"step_id": step_id, "delta": delta})


def add_watch_command(sub: Any) -> None:
    watch = sub.add_parser("watch", help="follow a job's events from the API until it ends "
                                         "(exit 0 completed, 1 failed, 3 cancelled, 2 error)")
    watch.add_argument("job_id")
    watch.add_argument("--api-url", default="http://127.0.0.1:8000",
                       help="the API's base URL (default http://127.0.0.1:8000); the secret comes from "
                            "LLM_API_SECRET")
    watch.set_defaults(handler=watch_job)


def watch_job(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Follow the stream, resuming with ``Last-Event-ID`` when the connection drops (an API restart, a proxy
    timeout), until the terminal event."""
    from .config import Config
    from .engine.errors import WorkflowError
    from .http import HttpClient
    from .sse import SseParser

    config = Config.from_env()
    view = ProgressView(out or sys.stdout)
    url = f"{args.api_url.rstrip('/')}/api/v1/jobs/{args.job_id}/events"
    http = HttpClient(pool_size=1, user_agent="llm-service-watch", allow_private_networks=True)
    state: dict[str, Any] = {"last": None, "exit": None}

    def on_line(line: str) -> None:
        event = parser.feed(line)
        if event is None or event.event is None or state["exit"] is not None:
            return
        state["last"] = event.id or state["last"]
        data = event.json() or {}
        view.show(event.event, data)
        if event.event in TERMINAL:
            state["exit"] = EXIT_CODES[TERMINAL[event.event]]

    failures = 0
    try:
        while state["exit"] is None:
            parser = SseParser()
            headers = {"X-API-Secret": config.api_secret, "Accept": "text/event-stream"}
            if state["last"]:
                headers["Last-Event-ID"] = state["last"]
            seen, error = state["last"], "closed early"
            try:
                response = http.stream_lines("GET", url, headers=headers, on_line=on_line, timeout=7 * 86400,
                                             service="llm-service API")
            except WorkflowError as exc:
                response = None
                error = exc.message
            if response is not None and response.status != 200:
                detail = _detail(response)
                print(f"llm-service watch: {response.status} {detail}", file=sys.stderr)
                return EXIT_ERROR
            if state["exit"] is not None:
                break
            failures = 0 if state["last"] != seen else failures + 1
            if failures >= RECONNECTS:
                print(f"llm-service watch: lost the stream: {error}", file=sys.stderr)
                return EXIT_ERROR
            time.sleep(min(5.0, 0.5 * 2 ** failures))
    finally:
        http.close()
    return state["exit"]


def _detail(response: Any) -> str:
    try:
        return response.json()["detail"]["message"]
    except Exception:
        return response.text()[:200]
