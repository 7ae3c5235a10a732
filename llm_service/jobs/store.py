"""Redis-backed job records shared by the API, the worker, the webhook sender and the sweeper.

The contract is ``.dev/JOBSTORE_CONTRACT.md``. What this module adds to it:

* Every read-modify-write is one Lua script (``lua.py``) and ``create`` is one MULTI/EXEC, so a job is never half
  written and a terminal status is never left: each script re-checks the status it needs inside Redis.
* Hash values are JSON, so bools, ints, nulls and nested objects come back with their types; the client may use
  ``decode_responses`` True or False.
* Time comes from the injected ``clock`` (epoch seconds), never from Redis, so tests can move it. Key expiry is set
  relative to "now" when the job is created, which equals created + retention + 1 day.
* Redis being unreachable or timing out surfaces as :class:`StoreUnavailable` (the API answers 503).
* redis-py re-sends a command whose reply was lost; the scripts recognise their own earlier run (``lua.py``), so a
  claim, finish, cancel or recovery is never reported as "someone else did it" to the caller that did it.
* Every move into a terminal state of a job with a ``webhook_url`` also puts it in ``P:webhooks:due`` (at now +
  ``webhook_safety_delay``), so a process that dies between ``finish`` and enqueuing the webhook leaves it to the
  due-webhook sweep.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

import redis

from ..redaction import redact_text
from . import lua
from .encoding import SharedEncoding, decode
from .encoding import encode as _enc
from .lifecycle import STATUSES, TERMINAL_STATUSES, WEBHOOK_EVENTS, canonical_uuid
from .pipeline import ScriptPipeline
from .timeutil import epoch_to_ms, ms_to_iso

WEBHOOK_STATES = ("none", "pending", "delivered", "failed")

# Every record key with its default, in the order records are written.
RECORD_DEFAULTS: dict[str, Any] = {
    "job_id": None, "celery_task_id": None, "workflow_name": None, "workflow_version": None,
    "status": "queued", "priority": 0, "user_id": None, "username": None, "action": None, "input_data": {},
    "webhook_url": None, "webhook_secret": None, "debug_mode": False,
    "created_at": None, "queued_at": None, "started_at": None, "completed_at": None, "updated_at": None,
    "duration_ms": None, "result": None, "error_message": None, "error": None, "progress": None,
    "attempts": 0, "recoveries": 0, "worker_id": None, "lease_token": None, "cancel_requested": False,
    "webhook_event": None, "webhook_state": "none", "webhook_attempts": 0, "webhook_next_attempt_at": None,
    "webhook_permanently_failed": False, "total_tokens": 0, "total_cost_usd": 0.0,
    "rerun_of": None, "rerun_from_step": None, "definition_hash": None, "step_fingerprints": None,
}
# What a caller may set in create(); everything else is owned by the store's state machine.
CALLER_FIELDS = frozenset({"job_id", "workflow_name", "workflow_version", "priority", "user_id", "username",
                           "action", "input_data", "webhook_url", "webhook_secret", "debug_mode", "rerun_of",
                           "rerun_from_step", "definition_hash", "step_fingerprints"})
SUMMARY_FIELDS = ("job_id", "workflow_name", "status", "priority", "user_id", "username", "action", "created_at",
                  "started_at", "completed_at", "duration_ms", "error_message", "rerun_of")

WORKER_LOST_MESSAGE = ("The worker running this job stopped before it finished (no heartbeat) and the job has "
                       "used its __N__ automatic re-run(s) (JOB_MAX_RECOVERIES); submit it again to retry.")

_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
_DAY = 86400
# How deep shared step outputs are looked for (encoding.SharedEncoding): a step's entry and record hold its output
# at level 1 and the output's fields at level 2; the result holds the entries at level 2 (steps_executed).
_STEP_DEPTH = 2
_RESULT_DEPTH = 3


class StoreUnavailable(Exception):
    """Redis could not be reached or did not answer in time; the API turns this into 503."""


class DuplicateJob(ValueError):
    """``create`` was given the id of a job that already exists; the existing job is left untouched."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's idempotency key as the store keeps it: ``name`` is already scoped (to an API secret) and hashed,
    ``fingerprint`` identifies the request it was first used with, ``ttl_seconds`` how long it is remembered."""
    name: str
    fingerprint: str
    ttl_seconds: float


class IdempotencyKeyTaken(Exception):
    """The idempotency key already names a job that still exists: ``same_request`` tells a retry (answer with that
    job) from a different request reusing the key."""

    def __init__(self, job_id: str, same_request: bool) -> None:
        super().__init__(f"Idempotency key already used for job {job_id}")
        self.job_id = job_id
        self.same_request = same_request


@dataclass(frozen=True)
class Claim:
    """Outcome of :meth:`JobStore.claim`: ``claimed`` | ``not_found`` | ``finished`` | ``busy``.

    ``token`` is set only when claimed (the lease token the worker must present); ``record`` is the job as it is
    after the claim (None when not found).
    """
    outcome: str
    token: str | None
    record: dict | None


F = TypeVar("F", bound=Callable[..., Any])
JobEvent = tuple[int, str, dict]
"""``(sequence number in this execution, event name, data)``: what a worker publishes to a job's event stream."""


def _translating_outages(method: F) -> F:
    """Turn redis-py's connection/timeout errors into StoreUnavailable with a message an operator can act on."""
    @functools.wraps(method)
    def wrapper(self: "JobStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Job store unavailable: Redis did not answer during {method.__name__} "
                f"({type(exc).__name__}: {redact_text(str(exc))})") from exc
    return wrapper  # type: ignore[return-value]


def _text(value: Any) -> Any:
    """Redis replies are bytes or str depending on the client's decode_responses; we always work with str."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


# What create() writes that is the same for every new job (the store-owned defaults: counters, nulls, "queued"),
# JSON-encoded once; these values live in the create script (lua.create_script), only the others travel per call.
_PER_JOB_FIELDS = CALLER_FIELDS | {"celery_task_id", "created_at", "queued_at", "updated_at"}
_FIXED_ENCODED = {key: _enc(value)
                  for key, value in RECORD_DEFAULTS.items() if key not in _PER_JOB_FIELDS}
_PER_JOB_ORDER = tuple(key for key in RECORD_DEFAULTS if key not in _FIXED_ENCODED)


def _dec(raw: Any) -> Any:
    return None if raw is None else decode(_text(raw))


def _record(pairs: Iterable[tuple[Any, Any]]) -> dict:
    """A full record from hash field/value pairs; keys a stored job lacks (older schema) get their defaults."""
    stored = {_text(k): _dec(v) for k, v in pairs}
    record = {key: stored.pop(key, default) for key, default in RECORD_DEFAULTS.items()}
    record.update(stored)
    return record


def _taken(named: list, idempotency: IdempotencyKey) -> IdempotencyKeyTaken:
    """The refusal for a key that names ``named`` = [job id, fingerprint] (a Lua reply)."""
    return IdempotencyKeyTaken(_text(named[0]), _text(named[1]) == idempotency.fingerprint)


def _progress_json(progress: dict, iso: str) -> str:
    """A progress snapshot as stored: ``last_updated`` is the time of the write unless the caller set it."""
    return _enc({**progress, "last_updated": progress.get("last_updated") or iso})


def _record_from_flat(flat: list) -> dict:
    return _record(zip(flat[0::2], flat[1::2]))


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.p = prefix + ":"

    def job(self, job_id: str) -> str:
        return f"{self.p}job:{job_id}"

    def sub(self, job_id: str, name: str) -> str:
        return f"{self.p}job:{job_id}:{name}"

    @property
    def all(self) -> str:
        return f"{self.p}jobs:all"

    def status(self, status: str) -> str:
        return f"{self.p}jobs:status:{status}"

    def user(self, user_id: str) -> str:
        return f"{self.p}jobs:user:{user_id}"

    @property
    def users(self) -> str:
        return f"{self.p}jobs:users"

    @property
    def due(self) -> str:
        return f"{self.p}webhooks:due"

    def lock(self, name: str) -> str:
        return f"{self.p}lock:{name}"

    def idempotency(self, name: str) -> str:
        return f"{self.p}idempotency:{name}"

    def scratch(self) -> str:
        return f"{self.p}tmp:{uuid.uuid4().hex}"


class JobStore:
    """Job records and their indexes in Redis; see the module docstring and the contract."""

    def __init__(self, redis_client: redis.Redis, *, prefix: str = "llm", retention_days: float = 30,
                 clock: Callable[[], float] = time.time, webhook_safety_delay: float = 30.0) -> None:
        """``webhook_safety_delay``: how long after a job ends its webhook falls due in ``P:webhooks:due`` unless
        the caller reschedules it (it normally delivers at once): a process dying between ``finish`` and
        enqueuing the delivery leaves it to the due-webhook sweep instead of losing it. Not zero, so the sweep
        does not race the immediate delivery."""
        if not retention_days > 0:
            raise ValueError("retention_days must be above 0")
        self._webhook_safety_ms = epoch_to_ms(max(0.0, webhook_safety_delay))
        self._r = redis_client
        self._k = _Keys(prefix)
        self._retention_days = retention_days
        self._record_ttl = math.ceil((retention_days + 1) * _DAY)  # whole seconds, for EXPIRE
        self._clock = clock
        self._create = redis_client.register_script(lua.create_script(tuple(RECORD_DEFAULTS), _FIXED_ENCODED))
        self._idempotent_job = redis_client.register_script(lua.IDEMPOTENT_JOB)
        self._claim = redis_client.register_script(lua.CLAIM)
        self._save_progress = redis_client.register_script(lua.SAVE_PROGRESS)
        self._save_batch = redis_client.register_script(lua.SAVE_BATCH)
        self._finish = redis_client.register_script(lua.FINISH)
        self._cancel = redis_client.register_script(lua.CANCEL)
        self._recover = redis_client.register_script(lua.RECOVER)
        self._republish = redis_client.register_script(lua.REPUBLISH)
        self._release_parked = redis_client.register_script(lua.RELEASE_PARKED)
        self._append = redis_client.register_script(lua.APPEND)
        self._webhook_state = redis_client.register_script(lua.SET_WEBHOOK_STATE)
        self._heartbeat = redis_client.register_script(lua.HEARTBEAT)
        self._list = redis_client.register_script(lua.LIST)
        self._delete = redis_client.register_script(lua.DELETE)
        self._drop_empty_user = redis_client.register_script(lua.DROP_EMPTY_USER)
        self._purge = redis_client.register_script(lua.PURGE)
        self._save_webhook_payload = redis_client.register_script(lua.SAVE_WEBHOOK_PAYLOAD)

    # ---------------------------------------------------------------------------------------------- helpers

    def _now(self) -> tuple[int, str]:
        ms = epoch_to_ms(self._clock())
        return ms, ms_to_iso(ms)

    def _cutoff(self) -> float:
        """Oldest index score still inside the retention window."""
        return self._clock() - self._retention_days * _DAY

    def _job_args(self, job_id: str) -> tuple[list[str], list[Any]]:
        """KEYS and the leading ARGV shared by the per-job scripts (see lua.py)."""
        ms, iso = self._now()
        return [self._k.job(job_id)], self._prelude_args(job_id, ms, iso)

    def _prelude_args(self, job_id: str, ms: int, iso: str) -> list[Any]:
        webhook_due = _enc(ms_to_iso(ms + self._webhook_safety_ms))
        return [self._k.p, job_id, ms, _enc(iso), uuid.uuid4().hex, webhook_due]

    # ---------------------------------------------------------------------------------------------- basics

    def ping(self) -> bool:
        """Health check: never raises for an unreachable Redis, just answers False."""
        try:
            return bool(self._r.ping())
        except (*_UNAVAILABLE, redis.exceptions.ResponseError):
            return False

    @_translating_outages
    def create(self, record: dict, *, idempotency: IdempotencyKey | None = None,
               message: tuple[str, str] | None = None) -> dict:
        """Store a new queued job (hash, indexes and expiry in one Lua call) and return the full record.

        The caller supplies the fields in :data:`CALLER_FIELDS` (``workflow_name`` required, ``job_id`` generated
        when absent); store-owned fields given here (status, timestamps, counters...) are ignored. Unknown keys,
        bad types and values that are not JSON-serialisable raise ValueError before anything is written; an
        existing id raises :class:`DuplicateJob`. With ``idempotency``, a key that already names an existing job
        raises :class:`IdempotencyKeyTaken` and nothing is written; otherwise the key is remembered with the job.
        ``message`` (``(Redis list, payload)``, from ``JobQueue.pending_push``) is pushed in the same call, only
        when this call creates the job: the job is then published too.
        """
        now_ms, now = self._now()
        fields = self._new_record(record, now)
        per_job = [_enc(fields[key]) for key in _PER_JOB_ORDER]  # ValueError/TypeError before any write
        encoded = {**_FIXED_ENCODED, **dict(zip(_PER_JOB_ORDER, per_job))}
        job_id, user_id = fields["job_id"], fields["user_id"]
        key = self._k.job(job_id)
        score = repr(now_ms / 1000)
        queue_list, payload = message or ("", "")
        keys = [key, self._k.all, self._k.status("queued"), self._k.user(user_id) if user_id else "", self._k.users,
                self._k.idempotency(idempotency.name) if idempotency else "", queue_list]
        once = [_ms(idempotency.ttl_seconds), idempotency.fingerprint] if idempotency else [0, ""]
        try:
            created = self._create(keys=keys, args=[job_id, score, self._record_ttl,
                                                   user_id or "", *once, self._k.p, payload, *per_job])
        except _UNAVAILABLE as exc:
            return self._settle_interrupted_create(key, encoded, exc)
        except redis.exceptions.ResponseError:
            # A script does not roll back a command that failed inside it (e.g. an index key of the wrong type):
            # undo the parts that did apply, so no half job stays behind, then report the error.
            self._undo_create(job_id, user_id)
            raise
        if isinstance(created, list) and idempotency is not None:
            taken = _taken(created, idempotency)
            if taken.job_id != job_id:  # a key naming our own id is this very call, re-sent by redis-py
                raise taken
            return self._settle_interrupted_create(key, encoded, DuplicateJob(f"Job already exists: {job_id}"))
        if not created:  # the id exists: our own earlier attempt whose reply was lost (redis-py re-sent it), or not
            return self._settle_interrupted_create(key, encoded, DuplicateJob(f"Job already exists: {job_id}"))
        return fields

    @_translating_outages
    def idempotent_job(self, idempotency: IdempotencyKey) -> IdempotencyKeyTaken | None:
        """What :meth:`create` would refuse with for this key right now (a read-only look-up), else None."""
        named = self._idempotent_job(keys=[self._k.idempotency(idempotency.name)], args=[self._k.p])
        return _taken(named, idempotency) if named else None

    def _undo_create(self, job_id: str, user_id: str | None) -> None:
        pipe = ScriptPipeline.of(self._r)
        pipe.delete(self._k.job(job_id))
        pipe.zrem(self._k.all, job_id)
        pipe.zrem(self._k.status("queued"), job_id)
        if user_id is not None:
            pipe.zrem(self._k.user(user_id), job_id)
            self._drop_empty_user(keys=[self._k.user(user_id), self._k.users], args=[user_id], client=pipe)
        pipe.execute(raise_on_error=False)

    def _settle_interrupted_create(self, key: str, encoded: dict[str, str], exc: Exception) -> dict:
        """The create was interrupted (connection lost) or found the id taken: find out what happened.

        The script is all-or-nothing, so the hash is either exactly ours (the reply was lost after Redis applied
        it, and redis-py's retry then found the id taken), somebody else's (a real duplicate), or absent (nothing
        was written).
        """
        stored = {_text(k): _text(v) for k, v in self._r.hgetall(key).items()}
        if stored == encoded:
            return {k: json.loads(v) for k, v in encoded.items()}
        if stored:
            raise DuplicateJob(f"Job already exists: {json.loads(encoded['job_id'])}") from exc
        raise StoreUnavailable(f"Job store unavailable: the connection to Redis was lost while creating the job; "
                               f"it was not stored ({type(exc).__name__})") from exc

    @staticmethod
    def _new_record(given: dict, now: str) -> dict:
        unknown = sorted(set(given) - set(RECORD_DEFAULTS))
        if unknown:
            raise ValueError(f"Unknown job record field(s): {', '.join(unknown)}")
        job_id = given.get("job_id") or str(uuid.uuid4())
        if not isinstance(job_id, str) or canonical_uuid(job_id) != job_id:
            raise ValueError(f"job_id must be a lowercase hyphenated UUID string, got {job_id!r}")
        name = given.get("workflow_name")
        if not isinstance(name, str) or not name:
            raise ValueError("workflow_name is required")
        priority = given.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 10:
            raise ValueError(f"priority must be an integer 0-10, got {priority!r}")
        for optional in ("workflow_version", "user_id", "username", "action", "webhook_url", "webhook_secret",
                         "rerun_of", "rerun_from_step", "definition_hash"):
            value = given.get(optional)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{optional} must be a string or null, got {type(value).__name__}")
        if given.get("user_id") == "":
            raise ValueError("user_id must not be empty (use null for no user)")
        debug_mode = given.get("debug_mode", False)
        if not isinstance(debug_mode, bool):
            raise ValueError("debug_mode must be true or false")
        record = dict(RECORD_DEFAULTS)
        record.update({key: given[key] for key in CALLER_FIELDS if key in given})
        record.update(job_id=job_id, celery_task_id=job_id, priority=priority, debug_mode=debug_mode,
                      status="queued", created_at=now, queued_at=now, updated_at=now)
        if "input_data" not in given:
            record["input_data"] = {}
        return record

    @_translating_outages
    def get(self, job_id: str) -> dict | None:
        """The full record (one HGETALL), including ``webhook_secret``: callers that expose it must strip it."""
        data = self._r.hgetall(self._k.job(job_id))
        return _record(data.items()) if data else None

    @_translating_outages
    def status(self, job_id: str) -> str | None:
        """Just the status (one HGET), None when the job does not exist."""
        return _dec(self._r.hget(self._k.job(job_id), "status"))

    # ---------------------------------------------------------------------------------------------- execution

    @_translating_outages
    def claim(self, job_id: str, *, worker_id: str, lease_seconds: float, user_limit: int = 0) -> Claim:
        """Take a queued job for execution (one Lua call). Only ``claimed`` means "run it"; ``parked`` means its
        user already runs ``user_limit`` jobs (or has earlier ones waiting): it waits, queued, for
        :meth:`release_parked` to hand it back."""
        token = uuid.uuid4().hex
        keys, args = self._job_args(job_id)
        reply = self._claim(keys=keys, args=[*args, _enc(worker_id), token, _enc(token), _ms(lease_seconds),
                                             int(user_limit)])
        outcome = _text(reply[0])
        record = _record_from_flat(reply[1]) if len(reply) > 1 else None
        return Claim(outcome, token if outcome == "claimed" else None, record)

    @_translating_outages
    def heartbeat(self, leases: dict[str, str], *, lease_seconds: float) -> set[str]:
        """Extend every lease this worker holds (one Lua call); returns the job ids whose lease is lost.

        A lease key that expired is re-established while the job is still ``processing`` under the same token,
        i.e. the sweeper has not recovered it yet.
        """
        if not leases:
            return set()
        ids = list(leases)
        args: list[Any] = [_ms(lease_seconds)]
        for job_id in ids:
            args += [leases[job_id], _enc(leases[job_id])]
        lost = self._heartbeat(keys=[self._k.job(j) for j in ids], args=args)
        return {ids[int(position) - 1] for position in lost}

    @_translating_outages
    def save_progress(self, job_id: str, token: str, progress: dict, step_entry: dict | None) -> bool:
        """Record progress (and append the step entry) if the job is processing under ``token``.

        Returns whether it was recorded (the contract allows ignoring the result). ``progress`` gets
        ``last_updated`` = now when the caller did not set it.
        """
        ms, iso = self._now()
        step = "" if step_entry is None else _enc(step_entry)
        return bool(self._save_progress(keys=[self._k.job(job_id)], args=[
            *self._prelude_args(job_id, ms, iso), _enc(token), _progress_json(progress, iso), step]))

    @_translating_outages
    def save_progress_batch(self, job_id: str, token: str, items: list[tuple[dict, dict | None]], *,
                            records: list[tuple[str, dict]] = (), events: list[JobEvent] = (),
                            encoding: SharedEncoding | None = None) -> None:
        """Several ``save_progress`` calls, the full records of the steps they report (kept while the job is
        processing, for a later re-run) and the job events that go with them (appended to the job's stream,
        ``GET /jobs/<id>/events``, while the job runs under ``token``), in one Lua call: the worker buffers them
        for fast steps. Events are ``(sequence number, name, data)`` with consecutive numbers per execution, so a
        batch redis-py re-sends after a lost reply is recognised and not stored twice. ``encoding``: the job's
        (see :class:`SharedEncoding`), else one for this call."""
        if not items and not records and not events:
            return
        ms, iso = self._now()
        batch = self._batch_args(iso, encoding or SharedEncoding(), items, records, events, ())
        self._save_batch(keys=[self._k.job(job_id)], args=[*self._prelude_args(job_id, ms, iso), _enc(token), *batch])

    @staticmethod
    def _batch_args(iso: str, shared: SharedEncoding, items: Iterable[tuple[dict, dict | None]],
                    records: Iterable[tuple[str, dict]], events: Iterable[JobEvent], usage: Iterable[dict]) -> list:
        """The ``save_batch`` arguments (lua.py) for what an execution has not saved yet. A step's entry and its
        record hold the same output: ``shared`` encodes it once (and the result, in the finish, reuses it)."""
        items, records, events, usage = list(items), list(records), list(events), list(usage)
        args: list[Any] = [len(records), len(items), len(events), int(events[0][0]) if events else 0, len(usage)]
        for step_id, record in records:
            args += [step_id, shared.encode(record, _STEP_DEPTH)]
        for progress, entry in items:
            args += [_progress_json(progress, iso), "" if entry is None else shared.encode(entry, _STEP_DEPTH)]
        for _, name, data in events:
            args += [name, _enc(data)]
        args += [shared.encode(record, 0) for record in usage]  # the result lists them too (metadata.llm_calls)
        return args

    @_translating_outages
    def events(self, job_id: str, after: str = "0-0", *, count: int = 500, block_ms: int | None = None,
               client: Any = None) -> list[tuple[str, str, dict]]:
        """The job's events after stream id ``after``, oldest first, as ``(id, name, data)``; with ``block_ms``
        waits up to that long for the first one (XREAD BLOCK, on ``client`` if given: a blocking read holds its
        connection)."""
        reply = (client or self._r).xread({self._k.sub(job_id, "events"): after}, count=count, block=block_ms)
        if not reply:
            return []
        out = []
        for event_id, fields in reply[0][1]:
            values = {_text(k): _text(v) for k, v in fields.items()}
            out.append((_text(event_id), values.get("event", ""), json.loads(values.get("data") or "{}")))
        return out

    @_translating_outages
    def finish(self, job_id: str, token: str, *, status: str, result: dict | None, error: dict | None,
               error_message: str | None, total_tokens: int = 0, total_cost_usd: float = 0.0,
               progress_items: list[tuple[dict, dict | None]] = (), usage: list[dict] = (),
               step_records: list[tuple[str, dict]] = (), events: list[JobEvent] = (),
               encoding: SharedEncoding | None = None) -> bool:
        """End the execution holding ``token``; True iff this call made the transition.

        Progress, step records and events not yet saved and the job's LLM usage records travel in the same Lua
        call, applied ahead of the transition, so a short job costs the worker two round trips: claim and finish.
        The transition itself appends the terminal event (``job.<status>``). ``encoding``: the one the job's
        progress saves used, so the result finds the step outputs they encoded (:class:`SharedEncoding`).
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish() needs a terminal status, got {status!r}")
        ms, iso = self._now()
        shared = encoding or SharedEncoding()
        batch = self._batch_args(iso, shared, progress_items, step_records, events, usage)  # first: the result
        values = [shared.encode(result, _RESULT_DEPTH), _enc(error), _enc(error_message), _enc(int(total_tokens)),
                  _enc(float(total_cost_usd))]  # then finds their step outputs and the outputs' fields encoded
        return bool(self._finish(keys=[self._k.job(job_id)], args=[
            *self._prelude_args(job_id, ms, iso), _enc(token), status, WEBHOOK_EVENTS[status], *values, *batch]))

    @_translating_outages
    def cancel(self, job_id: str) -> str:
        """``cancelled`` | ``cancelling`` | ``finished`` | ``not_found`` (see the contract)."""
        keys, args = self._job_args(job_id)
        return _text(self._cancel(keys=keys, args=args))

    @_translating_outages
    def is_cancel_requested(self, job_id: str) -> bool:
        """Should the execution running this job stop? True when a cancel was requested, and also when the job
        was deleted or has already ended (nothing the execution does can be recorded any more)."""
        return job_id in self.cancel_requested([job_id])

    @_translating_outages
    def cancel_requested(self, job_ids: list[str]) -> set[str]:
        """:meth:`is_cancel_requested` for many jobs in one pipelined round trip (a worker's periodic check)."""
        pipe = ScriptPipeline.of(self._r)
        for job_id in job_ids:
            pipe.exists(self._k.sub(job_id, "cancel"))
            pipe.hget(self._k.job(job_id), "status")
        replies = pipe.execute()
        return {job_id for job_id, flagged, status in zip(job_ids, replies[0::2], replies[1::2])
                if flagged or status is None or _dec(status) in TERMINAL_STATUSES}

    @_translating_outages
    def recover_stale(self, *, max_recoveries: int, grace_seconds: float) -> list[tuple[str, str]]:
        """Re-queue, fail or cancel processing jobs whose worker is gone; returns what it changed.

        Candidates come from the processing index; each is re-checked inside its own Lua call (lease key absent,
        started at least ``grace_seconds`` ago, still processing), so two sweepers never act on the same job twice
        and a job with a live lease is never touched. All calls go in one pipelined round trip.
        """
        candidates = [_text(j) for j in self._r.zrangebyscore(self._k.status("processing"), self._cutoff(), "+inf")]
        if not candidates:
            return []
        ms, iso = self._now()
        error = {"type": "WorkerLost", "category": "SYSTEM_ERROR", "message": WORKER_LOST_MESSAGE,
                 "timestamp": iso, "retryable": True, "retry_after": None, "step_id": None, "details": {}}
        pipe = ScriptPipeline.of(self._r)
        for job_id in candidates:
            self._recover(keys=[self._k.job(job_id)],
                          args=[*self._prelude_args(job_id, ms, iso), int(max_recoveries),
                                max(0, epoch_to_ms(grace_seconds)), _enc(error), _enc(WORKER_LOST_MESSAGE)],
                          client=pipe)
        outcomes = [_text(o) for o in pipe.execute()]
        return [(job_id, outcome) for job_id, outcome in zip(candidates, outcomes) if outcome != "skipped"]

    @_translating_outages
    def due_for_republish(self, *, after_seconds: float, limit: int = 500) -> list[tuple[str, int]]:
        """Queued jobs not (re)published for ``after_seconds``, oldest first, as (job id, priority); each is
        stamped ``published_at`` = now in the same Lua call, so it comes up again only after another
        ``after_seconds`` and two sweepers never both take it. The caller publishes them again."""
        newest = self._clock() - after_seconds
        candidates = [_text(j) for j in self._r.zrangebyscore(self._k.status("queued"), self._cutoff(), newest,
                                                              start=0, num=limit)]
        if not candidates:
            return []
        ms, iso = self._now()
        pipe = ScriptPipeline.of(self._r)
        for job_id in candidates:
            self._republish(keys=[self._k.job(job_id)],
                            args=[*self._prelude_args(job_id, ms, iso), epoch_to_ms(after_seconds)], client=pipe)
        replies = [_text(r) for r in pipe.execute()]
        return [(job_id, int(reply)) for job_id, reply in zip(candidates, replies) if reply != "skipped"]

    # ---------------------------------------------------------------------------------------------- fairness

    @_translating_outages
    def release_parked(self, user_id: str, *, limit: int, gap_seconds: float = 0.0) -> list[tuple[str, int]]:
        """The user's parked jobs that may run now, as (job id, priority), for the caller to publish again (one
        Lua call); a job published within ``gap_seconds`` is left alone, so concurrent callers do not both send
        it and a periodic sweep re-sends only messages that went missing."""
        ms, iso = self._now()
        reply = self._release_parked(args=[self._k.p, user_id, int(limit), ms, _enc(iso), epoch_to_ms(gap_seconds)])
        return [(_text(job_id), int(_text(priority))) for job_id, priority in reply]

    @_translating_outages
    def parked_users(self) -> list[str]:
        return [_text(user) for user in self._r.smembers(f"{self._k.p}fair:users")]

    @_translating_outages
    def count_parked(self) -> int:
        users = self.parked_users()
        pipe = ScriptPipeline.of(self._r)
        for user in users:
            pipe.llen(f"{self._k.p}fair:parked:{user}")
        return sum(int(n) for n in pipe.execute()) if users else 0

    # ---------------------------------------------------------------------------------------------- re-runs

    @_translating_outages
    def step_records(self, job_id: str) -> dict[str, dict]:
        """The step records the job's executions kept: step id -> record."""
        return self._hash_of(self._k.sub(job_id, "records"))

    @_translating_outages
    def set_reused_records(self, job_id: str, records: dict[str, dict]) -> None:
        """The earlier run's records a re-run job reuses (written before the job is published; expire with it)."""
        if not records:
            return
        key = self._k.sub(job_id, "reuse")
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(key, mapping={step_id: _enc(record) for step_id, record in records.items()})
        pipe.expire(key, (self._retention_days + 1) * _DAY)
        pipe.execute()

    @_translating_outages
    def reused_records(self, job_id: str) -> dict[str, dict]:
        return self._hash_of(self._k.sub(job_id, "reuse"))

    def _hash_of(self, key: str) -> dict[str, dict]:
        return {_text(k): _dec(v) for k, v in self._r.hgetall(key).items()}

    # ---------------------------------------------------------------------------------------------- queries

    @_translating_outages
    def list_jobs(self, *, statuses: list[str] | None, user_id: str | None, since: float | None,
                  limit: int, offset: int) -> tuple[list[dict], int]:
        """Newest first; ``total`` counts every match inside the window, before paging (one Lua call).

        ``statuses`` is a union (None or empty = any status); ``since`` is an inclusive epoch lower bound,
        narrowed further by the retention window.
        """
        wanted = list(dict.fromkeys(statuses or ()))
        bad = [s for s in wanted if s not in STATUSES]
        if bad:
            raise ValueError(f"Unknown status(es): {', '.join(map(str, bad))}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        floor = self._cutoff() if since is None else max(since, self._cutoff())
        total, rows = self._list(args=[self._k.p, self._k.scratch(), repr(float(floor)), int(offset), int(limit),
                                       user_id or "", len(wanted), *wanted, *SUMMARY_FIELDS])
        jobs = []
        for row in rows:
            summary = dict(zip(SUMMARY_FIELDS, (_dec(v) for v in row)))
            if summary["job_id"] is not None:
                jobs.append(summary)
        return jobs, int(total)

    @_translating_outages
    def count_by_status(self) -> dict[str, int]:
        """Jobs per status inside the retention window (one pipelined round trip)."""
        cutoff = self._cutoff()
        pipe = ScriptPipeline.of(self._r)
        for status in STATUSES:
            pipe.zcount(self._k.status(status), cutoff, "+inf")
        return dict(zip(STATUSES, (int(n) for n in pipe.execute())))

    @_translating_outages
    def delete(self, job_ids: list[str]) -> list[dict]:
        """Remove jobs with every sub-key and index entry (one Lua call); returns ``{job_id, status}`` of those
        that existed. A running job's worker sees the deletion as a cancel request."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return []
        reply = self._delete(keys=[self._k.job(j) for j in ids], args=[self._k.p, *ids])
        return [{"job_id": _text(job_id), "status": _dec(status)} for job_id, status in reply]

    @_translating_outages
    def add_usage(self, job_id: str, records: list[dict]) -> None:
        """Append LLM usage records (ignored for a job that does not exist)."""
        self._append_entries(job_id, "usage", "", records)

    @_translating_outages
    def usage(self, job_id: str) -> list[dict]:
        return self._entries(job_id, "usage")

    @_translating_outages
    def steps(self, job_id: str) -> list[dict]:
        return self._entries(job_id, "steps")

    def _entries(self, job_id: str, name: str) -> list[dict]:
        return [_dec(item) for item in self._r.lrange(self._k.sub(job_id, name), 0, -1)]

    def _append_entries(self, job_id: str, name: str, counter: str, entries: list[dict], client: Any = None) -> None:
        """One Lua call; a batch identical to the list's tail is taken as redis-py re-sending a lost call."""
        if not entries:
            return
        encoded = [_enc(entry) for entry in entries]
        keys, args = self._job_args(job_id)
        self._append(keys=keys, args=[*args, name, counter, *encoded], client=client)

    # ---------------------------------------------------------------------------------------------- webhooks

    @_translating_outages
    def record_webhook_attempt(self, job_id: str, attempt: dict) -> None:
        """Append one delivery attempt and set ``webhook_attempts`` to the number recorded (one round trip).

        The attempt's ``payload`` (tens of KB with a large result) is stored once per job and content in
        ``P:job:<id>:payloads``, not once per attempt: attempts of one event differ only in the payload's
        ``timestamp``, which is the attempt's own ``attempted_at``, so the stored copy leaves it out and the attempt
        keeps a ``payload_ref``. :meth:`webhook_attempts` puts the payload back together.
        """
        pipe = ScriptPipeline.of(self._r)
        payload = attempt.get("payload")
        if isinstance(payload, dict):
            encoded = _enc({**payload, "timestamp": None} if "timestamp" in payload else payload)
            ref = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:16]
            keys, args = self._job_args(job_id)
            self._save_webhook_payload(keys=keys, args=[*args, ref, encoded], client=pipe)
            attempt = {**{k: v for k, v in attempt.items() if k != "payload"}, "payload_ref": ref}
        self._append_entries(job_id, "webhooks", "webhook_attempts", [attempt], client=pipe)
        pipe.execute()

    @_translating_outages
    def webhook_attempts(self, job_id: str) -> list[dict]:
        """Every recorded attempt, each with its full ``payload`` (see :meth:`record_webhook_attempt`)."""
        pipe = ScriptPipeline.of(self._r)
        pipe.lrange(self._k.sub(job_id, "webhooks"), 0, -1)
        pipe.hgetall(self._k.sub(job_id, "payloads"))
        raw_attempts, raw_payloads = pipe.execute()
        payloads = {_text(ref): value for ref, value in raw_payloads.items()}
        attempts = []
        for attempt in (_dec(item) for item in raw_attempts):
            ref = attempt.pop("payload_ref", None)
            if ref is not None and ref in payloads:
                payload = _dec(payloads[ref])
                if "timestamp" in payload:
                    payload["timestamp"] = attempt.get("attempted_at")
                attempt["payload"] = payload
            attempts.append(attempt)
        return attempts

    @_translating_outages
    def set_webhook_state(self, job_id: str, state: str, *, next_attempt_at: float | None = None,
                          permanently_failed: bool = False) -> None:
        """Set the delivery state; ``pending`` with a time (re)schedules the job in the due set, every other
        state takes it out. ``pending`` without a time leaves the due set as it is."""
        if state not in WEBHOOK_STATES:
            raise ValueError(f"Unknown webhook state {state!r}")
        next_iso = "null" if next_attempt_at is None else _enc(ms_to_iso(epoch_to_ms(next_attempt_at)))
        next_score = "" if next_attempt_at is None else repr(epoch_to_ms(next_attempt_at) / 1000)
        keys, args = self._job_args(job_id)
        self._webhook_state(keys=keys, args=[*args, state, next_iso, next_score, _enc(bool(permanently_failed))])

    @_translating_outages
    def due_webhooks(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids whose next webhook attempt is due at or before ``now``, soonest first."""
        return [_text(j) for j in self._r.zrangebyscore(self._k.due, "-inf", now, start=0, num=limit)]

    @_translating_outages
    def try_lock(self, name: str, ttl_seconds: float) -> bool:
        """A best-effort mutex that simply expires (no release needed): at most one holder per TTL."""
        return bool(self._r.set(self._k.lock(name), uuid.uuid4().hex, nx=True, px=_ms(ttl_seconds)))

    # ---------------------------------------------------------------------------------------------- retention

    PURGE_BATCH = 500

    @_translating_outages
    def purge_expired(self) -> int:
        """Remove every job created before the retention window (hash, sub-keys, every index entry); returns how
        many. The worker's maintenance loop calls it on a schedule (``JOB_PURGE_INTERVAL_SECONDS``), so indexes
        hold only jobs inside the window and list calls never wade through years of dead ids.

        Batches of :attr:`PURGE_BATCH` jobs, one Lua call each, so Redis is never blocked for long. Idempotent;
        user indexes left behind by hashes that expired on their own are trimmed last.
        """
        cutoff = f"({self._cutoff()!r}"  # exclusive: entries exactly at the cutoff are still inside the window
        removed = 0
        while True:
            batch = int(self._purge(args=[self._k.p, cutoff, self.PURGE_BATCH]))
            removed += batch
            if batch < self.PURGE_BATCH:
                break
        users = [_text(u) for u in self._r.sscan_iter(self._k.users)]
        if users:
            pipe = ScriptPipeline.of(self._r)
            for user in users:
                pipe.zremrangebyscore(self._k.user(user), "-inf", cutoff)
            for user in users:
                self._drop_empty_user(keys=[self._k.user(user), self._k.users], args=[user], client=pipe)
            pipe.execute()
        return removed


