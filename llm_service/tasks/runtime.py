"""The worker process's runtime: runs jobs, delivers webhooks, and keeps jobs safe when workers die.

The Celery tasks are one-line wrappers around :meth:`WorkerRuntime.run_job` and
:meth:`WorkerRuntime.deliver_webhook`. What makes execution safe lives here, in plain code that tests drive directly:

* **Claim before running.** A job runs only after an atomic ``queued -> processing`` claim, so a redelivered
  message for a finished (or running) job does nothing: no second run, no second completion webhook.
* **Leases.** Each running job holds a lease key that one maintenance thread per process refreshes (and an OS
  thread too, ``lease_keeper.py``, so a busy event loop keeps them). A worker that dies (SIGKILL, OOM) stops
  refreshing; the sweeper (any live worker) then re-queues the job once, or fails it with a clear error, within
  about ``JOB_LEASE_SECONDS + SWEEPER_INTERVAL_SECONDS``. Queued jobs whose message is gone are published again.
* **Fairness.** With USER_MAX_CONCURRENT_JOBS, a user's jobs beyond the limit are parked by the claim and handed
  back when one of the user's jobs ends.
* **Cancellation.** The same thread checks cancel flags of the jobs this process runs and trips their tokens; the
  engine notices between steps and while waiting on upstream calls. A lost lease (the job was deleted or
  recovered elsewhere) trips the token too.
* **Webhooks on our schedule.** Attempts are due-times in the store, dispatched by the maintenance thread, so a
  retry survives a worker restart (Celery's countdown messages live in the dead worker's memory).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Mapping

import redis

from .. import services
from ..config import Config
from ..engine import WorkflowError
from ..engine.errors import ConfigurationError, error_context
from ..engine.ports import CancelFlag
from ..jobs import JobStore, StoreUnavailable
from ..jobs.encoding import SharedEncoding
from ..jobs.lifecycle import WEBHOOK_EVENTS, dispatch_webhook
from ..jobs.presence import WorkerPresence
from ..jobs.store import JobEvent
from ..job_events import LLM_TOKEN, EventRecorder, llm_token
from ..jobs.queue import JobQueue, QueueUnavailable
from ..jobs.timeutil import epoch_to_iso
from ..logs import event
from ..observability import WorkerMetrics, worker_metrics
from ..services import Services
from ..webhooks import run_delivery
from .lease_keeper import LeaseKeeper
from .native import native_lock

log = logging.getLogger("llm_service.worker")

STORE_RETRY_SECONDS = 60.0
PROGRESS_INTERVAL = 0.5  # progress of steps finishing faster than this is saved in batches (or with the finish)
PROGRESS_DELAY = 0.25  # the longest a finished step waits unsaved, plus one maintenance tick (MAINTENANCE_TICK)
MAINTENANCE_TICK = 0.25
FAIR_RELEASE_GAP = 1.0  # a parked job published this recently is not sent again by another finishing job
UNLIMITED = 1_000_000
BACKLOG_REPUBLISH_FACTOR = 10  # with a full-looking broker queue, a queued job is re-sent only after 10 periods


class Leases:
    """The jobs this process is running: job id -> (lease token, cancel flag). Guarded by a native lock because
    the lease keeper's OS thread reads it too."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, CancelFlag]] = {}
        self._lock = native_lock()

    def add(self, job_id: str, token: str) -> CancelFlag:
        flag = CancelFlag()
        with self._lock:
            self._items[job_id] = (token, flag)
        return flag

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._items.pop(job_id, None)

    def tokens(self) -> dict[str, str]:
        with self._lock:
            return {job_id: token for job_id, (token, _) in self._items.items()}

    def cancel(self, job_ids: set[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id in self._items:
                    self._items[job_id][1].cancel()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class ProgressBuffer:
    """The engine's listener for one job: step progress into the job store, cheaply but promptly.

    Why buffered: a short job should cost the worker two store round trips (claim and finish), yet a person watching
    a long job must see each finished step within about a second, whatever the next step does. So a step that
    finishes more than ``interval`` after the last save is saved at once; otherwise it waits for the maintenance
    thread (:meth:`flush_due`, at most ``delay`` after it happened) or goes with the finish (:meth:`drain`).
    A step that starts is recorded the same way, so a slow step shows as the one running. Each finished step's full
    record (kept for re-runs, so a crash mid-run keeps them) travels in the same writes.

    It is also the job's event publisher: ``step.started`` / ``step.completed`` and ``llm.token`` events (deltas of
    one step merged while they wait) go to the job's event stream in the same round trips as the progress they
    belong to, so the status endpoints and the event stream tell the same story and streaming costs no extra
    Redis writes per token.
    """

    def __init__(self, store: JobStore, job_id: str, token: str, *, interval: float = PROGRESS_INTERVAL,
                 delay: float = PROGRESS_DELAY, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.job_id, self.token = store, job_id, token
        self.interval, self.delay, self.clock = interval, delay, clock
        self.pending: list[tuple[dict, dict | None]] = []
        self.records: list[tuple[str, dict]] = []
        self.events: list[JobEvent] = []
        self._seq = 0
        self._progress: dict[str, Any] = {"current_step": None, "steps_completed": 0, "total_steps": None}
        self._running: dict[str, str] = {}  # step id -> title, in start order
        self._titles: dict[str, str] = {}
        self._recorder = EventRecorder()
        # each step's output encoded once for the job: its entry, its record and the result at the finish
        self.encoding = SharedEncoding()
        self._pending_since: float | None = None
        self._flushed_at = clock()
        self._closed = False
        self._lock = threading.Lock()        # the buffer's state
        self._flush_lock = threading.Lock()  # one save at a time, and none after drain()

    def step_started(self, step_id: str, position: int, total: int, name: str) -> None:
        with self._lock:
            self._running[step_id] = self._titles[step_id] = name
            self._queue(None, total)
            self._event(*self._recorder.started(step_id, position, total, name))

    def step_record(self, step_id: str, record: Mapping[str, Any]) -> None:
        """The engine's record sink: reported just before the step's entry, which then carries it."""
        with self._lock:
            self.records.append((step_id, dict(record)))
            if self._pending_since is None:
                self._pending_since = self.clock()

    def step_finished(self, step_id: str, finished: int, total: int, entry: Mapping[str, Any]) -> None:
        with self._lock:
            self._running.pop(step_id, None)
            self._progress.update(current_step=step_id, current_step_name=self._titles.get(step_id, step_id),
                                  steps_completed=finished)
            self._queue(dict(entry), total)
            self._event(*self._recorder.finished(step_id, finished, total, entry))
            due = self.clock() - self._flushed_at >= self.interval
        if due:
            self._flush()

    def llm_token(self, step_id: str, delta: str) -> None:
        with self._lock:
            last = self.events[-1] if self.events else None
            if last is not None and last[1] == LLM_TOKEN and last[2]["step_id"] == step_id:
                last[2]["delta"] += delta
            else:
                self._event(LLM_TOKEN, llm_token(step_id, delta))
            if self._pending_since is None:
                self._pending_since = self.clock()
            due = self.clock() - self._flushed_at >= self.interval
        if due:
            self._flush()

    def _event(self, name: str, data: dict) -> None:
        """Queue an event for the next save (caller holds the lock)."""
        self._seq += 1
        self.events.append((self._seq, name, data))

    def _queue(self, entry: dict | None, total: int) -> None:
        """Add a snapshot of the progress (with the step entry, if any); a snapshot without an entry replaces a
        trailing one that has none (only the newest state of the running step matters). Caller holds the lock."""
        active = next(reversed(self._running), None)
        self._progress.update(total_steps=total, active_step=active,
                              active_step_name=self._running.get(active) if active else None)
        item = (dict(self._progress), entry)
        if self.pending and self.pending[-1][1] is None:
            self.pending[-1] = item
        else:
            self.pending.append(item)
        if self._pending_since is None:
            self._pending_since = self.clock()

    def flush_due(self) -> None:
        """Save what has waited ``delay`` or longer (the maintenance thread calls this a few times a second)."""
        with self._lock:
            due = self._pending_since is not None and self.clock() - self._pending_since >= self.delay
        if due:
            self._flush()

    def _flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                if self._closed or not (self.pending or self.records or self.events):
                    return
                batch, self.pending = self.pending, []
                records, self.records = self.records, []
                events, self.events = self.events, []
                self._pending_since = None
                self._flushed_at = self.clock()
            try:
                self.store.save_progress_batch(self.job_id, self.token, batch, records=records, events=events,
                                               encoding=self.encoding)
            except StoreUnavailable:
                with self._lock:  # keep them for the next flush or the finish
                    self.pending[:0] = batch
                    self.records[:0] = records
                    self.events[:0] = events
                    self._pending_since = self._pending_since or self.clock()
                raise

    def drain(self) -> tuple[list[tuple[dict, dict | None]], list[tuple[str, dict]], list[JobEvent]]:
        """What is still unsaved (progress items, step records, events), for the finish to carry; waits for a save
        in flight, and no save happens after this (it would arrive after the finish and be refused, losing its
        entries)."""
        with self._flush_lock:
            with self._lock:
                self._closed = True
                batch, self.pending = self.pending, []
                records, self.records = self.records, []
                events, self.events = self.events, []
        return batch, records, events


class WorkerRuntime:
    def __init__(self, config: Config, *, services: Services, queue: JobQueue,
                 clock: Callable[[], float] = time.time, metrics: WorkerMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else worker_metrics()
        self.services = services
        self.store: JobStore = services.store
        self.queue = queue
        self.clock = clock
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.leases = Leases()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keeper: LeaseKeeper | None = None
        self._last: dict[str, float] = {}
        self._store_failed_at = float("-inf")
        self.progress_delay = PROGRESS_DELAY
        self._buffers: dict[str, ProgressBuffer] = {}  # progress of the jobs running here, flushed by maintenance
        self._buffers_lock = threading.Lock()
        self.presence = WorkerPresence(config.redis_key_prefix)

    # -- jobs ---------------------------------------------------------------------------------------------------

    def run_job(self, job_id: str) -> dict:
        claim = self._store_call(lambda: self.store.claim(job_id, worker_id=self.worker_id,
                                                          lease_seconds=self.config.job_lease_seconds,
                                                          user_limit=self.config.user_max_concurrent_jobs))
        if claim.outcome != "claimed":
            event(log, "job.skipped", job_id=job_id, reason=claim.outcome, status=(claim.record or {}).get("status"))
            return {"job_id": job_id, "skipped": claim.outcome}
        record, token = claim.record or {}, claim.token or ""
        flag = self.leases.add(job_id, token)
        progress = ProgressBuffer(self.store, job_id, token, delay=self.progress_delay)
        with self._buffers_lock:
            self._buffers[job_id] = progress
        self.metrics.job_started()
        event(log, "job.state", job_id=job_id, status="processing", workflow=record.get("workflow_name"),
              attempt=record.get("attempts"), worker=self.worker_id)
        try:
            result = self._execute(job_id, record, flag, progress)
            status = ("cancelled" if result["metadata"].get("cancelled")
                      else "completed" if result["success"] else "failed")
            error = result["metadata"].get("error")
            unsaved, records, events = progress.drain()
            finished = self._store_call(lambda: self.store.finish(
                job_id, token, status=status, result=result, error=error,
                error_message=error["message"] if error else None,
                total_tokens=result["metadata"].get("total_tokens", 0),
                total_cost_usd=result["metadata"].get("total_cost_usd", 0.0),
                progress_items=unsaved, step_records=records, usage=result["metadata"].get("llm_calls") or [],
                events=events, encoding=progress.encoding))
        finally:
            with self._buffers_lock:
                self._buffers.pop(job_id, None)
            self.leases.remove(job_id)
            self.metrics.job_stopped()
        event(log, "job.state", job_id=job_id, status=status if finished else "discarded",
              workflow=record.get("workflow_name"), duration_ms=result["metadata"].get("duration_ms"),
              error_type=(error or {}).get("type"), error_category=(error or {}).get("category"),
              total_tokens=result["metadata"].get("total_tokens"), cost_usd=result["metadata"].get("total_cost_usd"))
        self.metrics.job_finished(status if finished else "discarded")
        if self.config.user_max_concurrent_jobs:
            self._release_parked(record.get("user_id"), gap=FAIR_RELEASE_GAP)
        if finished and record.get("webhook_url"):
            dispatch_webhook(self.store, self.queue, job_id, WEBHOOK_EVENTS[status], now=self.clock())
        return {"job_id": job_id, "status": status if finished else "discarded"}

    def _execute(self, job_id: str, record: dict, flag: CancelFlag, progress: "ProgressBuffer") -> dict:
        engine = self.services.engine
        try:
            workflow = engine.load(record["workflow_name"])
        except WorkflowError as exc:  # the definition changed or vanished since submission
            error = error_context(exc if isinstance(exc, ConfigurationError)
                                  else ConfigurationError(str(exc)))
            return {"workflow_name": record.get("workflow_name"), "success": False, "output": None,
                    "steps_executed": [], "metadata": {"error": error, "total_tokens": 0, "total_cost_usd": 0.0,
                                                       "llm_calls": [], "duration_ms": 0}}
        return engine.run(workflow, record.get("input_data") or {}, progress=progress, cancel=flag, job_id=job_id,
                          record_sink=progress.step_record, completed_steps=self._reused_records(job_id, record))

    def _reused_records(self, job_id: str, record: dict) -> dict | None:
        """A re-run job gets the earlier run's records to reuse instead of executing those steps. (Every finished
        step's own record is kept as the step finishes, with its progress: a later re-run reuses it, even after a
        crash mid-run.)"""
        if not record.get("rerun_of"):
            return None
        return self._store_call(lambda: self.store.reused_records(job_id))

    # -- webhooks -----------------------------------------------------------------------------------------------

    def deliver_webhook(self, job_id: str, event_name: str, attempt: int = 1) -> dict:
        outcome = run_delivery(self.store, self.services.http, self.config, job_id, event_name, attempt,
                               clock=self.clock)
        event(log, "webhook.attempt", job_id=job_id, webhook_event=event_name, attempt=attempt,
              outcome=outcome.outcome, http_status=(outcome.attempt or {}).get("http_status"),
              duration_ms=(outcome.attempt or {}).get("duration_ms"), retry_in=outcome.delay)
        self.metrics.webhook_delivery(outcome.outcome)
        return {"job_id": job_id, "outcome": outcome.outcome, "delay": outcome.delay}

    # -- maintenance --------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llm-maintenance", daemon=True)
            self._thread.start()
            self._start_lease_keeper()

    def stop(self) -> None:
        self._stop.set()
        self._withdraw_presence()
        if self._keeper is not None:
            self._keeper.stop()

    def _start_lease_keeper(self) -> None:
        """Leases are also renewed from an OS thread, so a busy event loop cannot make a live job look dead."""
        config = self.config
        self._keeper = LeaseKeeper(
            lambda: JobStore(services.make_redis(config, max_connections=2), prefix=config.redis_key_prefix,
                             retention_days=config.job_retention_days),
            self.leases.tokens, lease_seconds=config.job_lease_seconds, interval=config.job_heartbeat_seconds)
        self._keeper.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.maintenance_tick()
            except Exception:
                log.warning("maintenance tick failed", exc_info=True)
            self._stop.wait(MAINTENANCE_TICK)

    def maintenance_tick(self, *, force: bool = False) -> None:
        """Progress of running jobs (every tick), heartbeats and cancel checks (JOB_HEARTBEAT_SECONDS), due
        webhooks (~1 s), the sweeper (SWEEPER_INTERVAL_SECONDS), then housekeeping (worker presence, retention
        purge). ``force`` runs them all now (tests)."""
        config = self.config
        self._flush_progress()
        if force or self._due("heartbeat", config.job_heartbeat_seconds):
            tokens = self.leases.tokens()
            if tokens:
                try:
                    lost = self.store.heartbeat(tokens, lease_seconds=config.job_lease_seconds)
                    stop = lost | self.store.cancel_requested(list(tokens))
                except StoreUnavailable:
                    self._store_failed_at = time.monotonic()
                    stop = set()
                if stop:
                    self.leases.cancel(stop)
        if force or self._due("webhooks", 1.0):
            self._dispatch_due_webhooks()
        if force or self._due("sweep", config.sweeper_interval_seconds):
            self._sweep()
        self._housekeeping(force)

    def _flush_progress(self) -> None:
        with self._buffers_lock:
            buffers = list(self._buffers.values())
        for buffer in buffers:
            try:
                buffer.flush_due()
            except StoreUnavailable:
                self._store_failed_at = time.monotonic()
                return

    def _due(self, name: str, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(name, 0.0) >= interval:
            self._last[name] = now
            return True
        return False

    def _dispatch_due_webhooks(self) -> None:
        try:
            due = self.store.due_webhooks(self.clock())
        except StoreUnavailable:
            self._store_failed_at = time.monotonic()
            return
        for job_id in due:
            record = self.store.get(job_id)
            if not record or record.get("webhook_state") != "pending" or not record.get("webhook_event"):
                state = (record or {}).get("webhook_state")
                self.store.set_webhook_state(job_id, state if state in ("delivered", "failed") else "failed")
                continue
            attempt = int(record.get("webhook_attempts") or 0) + 1
            if not self.store.try_lock(f"webhook-dispatch:{job_id}:{attempt}", 60):
                continue
            try:
                self.store.set_webhook_state(job_id, "pending", next_attempt_at=self.clock() + 60)
                self.queue.enqueue_webhook(job_id, record["webhook_event"], attempt=attempt)
            except (StoreUnavailable, QueueUnavailable):
                return

    def _sweep(self) -> None:
        """Recover jobs whose worker died. Not right after Redis was unreachable: every worker's leases lapsed
        during the outage, and live workers need one lease period to renew theirs before any job looks dead."""
        config = self.config
        if time.monotonic() - self._store_failed_at < config.job_lease_seconds:
            return
        try:
            if not self.store.try_lock("sweeper", config.sweeper_interval_seconds * 0.8):
                return
            outcomes = self.store.recover_stale(max_recoveries=config.job_max_recoveries,
                                                grace_seconds=config.job_lease_seconds)
        except StoreUnavailable:
            self._store_failed_at = time.monotonic()
            return
        for job_id, outcome in outcomes:
            event(log, "job.recovered", level=logging.WARNING, job_id=job_id, outcome=outcome,
                  status="queued" if outcome == "requeued" else outcome)
            self.metrics.job_recovered(outcome)
            try:
                if outcome == "requeued":
                    record = self.store.get(job_id) or {}
                    self.queue.enqueue(job_id, priority=int(record.get("priority") or 0))
                elif outcome in ("failed", "cancelled"):
                    record = self.store.get(job_id) or {}
                    if record.get("webhook_url"):
                        dispatch_webhook(self.store, self.queue, job_id, WEBHOOK_EVENTS[outcome], now=self.clock())
            except (StoreUnavailable, QueueUnavailable):
                log.warning("could not act on recovered job %s now", job_id, extra={"job_id": job_id})
        self._republish_lost_messages()
        for user_id in self._parked_users():
            self._release_parked(user_id, gap=self.config.queued_republish_seconds)

    def _republish_lost_messages(self) -> None:
        """Publish again queued jobs whose message is gone: lost by the broker, or taken by a worker that died
        before claiming it (that message would come back only after the visibility timeout, hours). After
        QUEUED_REPUBLISH_SECONDS a queued job is published again (once per period); the claim keeps it single-run
        when both messages arrive. While the broker holds at least as many messages as there are queued jobs (each
        can still have its own), only jobs queued BACKLOG_REPUBLISH_FACTOR times longer are, so a healthy backlog
        is not duplicated and a lost message is still bounded."""
        try:
            waiting = self.queue.backlog()
            after = self.config.queued_republish_seconds
            if waiting is not None and waiting >= self.store.count_by_status()["queued"] - self.store.count_parked():
                after *= BACKLOG_REPUBLISH_FACTOR
            due = self.store.due_for_republish(after_seconds=after)
            for job_id, priority in due:
                self.queue.enqueue(job_id, priority=priority)
                event(log, "job.republished", level=logging.WARNING, job_id=job_id, status="queued")
        except (StoreUnavailable, QueueUnavailable):
            log.warning("could not re-publish queued jobs now")

    # -- per-user fairness ----------------------------------------------------------------------------------------

    def _release_parked(self, user_id: str | None, *, gap: float) -> None:
        """Publish again the user's parked jobs that may run now (USER_MAX_CONCURRENT_JOBS): right after one of the
        user's jobs ends, and from the sweeper for messages that went missing (``gap`` = QUEUED_REPUBLISH_SECONDS).
        A limit turned off releases every parked job."""
        if not user_id:
            return
        limit = self.config.user_max_concurrent_jobs or UNLIMITED
        try:
            for job_id, priority in self.store.release_parked(user_id, limit=limit, gap_seconds=gap):
                self.queue.enqueue(job_id, priority=priority)
                event(log, "job.released", job_id=job_id, user_id=user_id, status="queued")
        except (StoreUnavailable, QueueUnavailable):
            log.warning("could not release parked jobs of a user now; the sweeper retries")

    def _parked_users(self) -> list[str]:
        try:
            return self.store.parked_users()
        except StoreUnavailable:
            return []

    # -- presence and retention -------------------------------------------------------------------------------

    def _housekeeping(self, force: bool) -> None:
        """The worker's heartbeat key (every third of WORKER_HEARTBEAT_TTL_SECONDS; ``/health`` and the container
        healthcheck read it) and the retention purge (JOB_PURGE_INTERVAL_SECONDS, one worker at a time)."""
        if force or self._due("presence", self.config.worker_heartbeat_ttl_seconds / 3):
            self._publish_presence()
        if force or self._due("purge", self.config.job_purge_interval_seconds):
            self._purge_expired()

    def _publish_presence(self) -> None:
        if self.services.redis is None:
            return
        info = {"hostname": socket.gethostname(), "pid": os.getpid(), "concurrency": self.config.worker_concurrency,
                "running": len(self.leases), "at": epoch_to_iso(self.clock())}
        try:
            self.presence.publish(self.services.redis, self.worker_id, info, self.config.worker_heartbeat_ttl_seconds)
        except (redis.RedisError, OSError):
            self._store_failed_at = time.monotonic()

    def _withdraw_presence(self) -> None:
        """A clean shutdown leaves the live count at once instead of after the TTL."""
        if self.services.redis is None:
            return
        try:
            self.presence.withdraw(self.services.redis, self.worker_id)
        except (redis.RedisError, OSError):
            pass  # the key expires by itself

    def _purge_expired(self) -> None:
        try:
            if not self.store.try_lock("purge", self.config.job_purge_interval_seconds * 0.8):
                return
            removed = self.store.purge_expired()
        except StoreUnavailable:
            self._store_failed_at = time.monotonic()
            return
        if removed:
            event(log, "jobs.purged", removed=removed, retention_days=self.config.job_retention_days)

    # -- helpers ------------------------------------------------------------------------------------------------

    def _store_call(self, fn: Callable[[], Any]) -> Any:
        """Retry a store call through a short Redis outage instead of dropping the job's state."""
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        delay = 0.5
        while True:
            try:
                return fn()
            except StoreUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("job store unavailable; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def install_runtime(runtime: WorkerRuntime) -> None:
    global _runtime
    with _runtime_lock:
        _runtime = runtime


def current_runtime() -> WorkerRuntime:
    """The process's runtime; built from the environment on first use if the worker did not install one."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            from .. import services
            from .celery_app import make_celery
            from .queue import CeleryJobQueue

            config = Config.from_env()
            _runtime = WorkerRuntime(config, services=services.build(config), queue=CeleryJobQueue(
                make_celery(config)))
        return _runtime
