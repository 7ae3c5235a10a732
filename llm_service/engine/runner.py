"""The engine: runs a workflow definition to a result.

One code path applies every step's error mode, retries, the deadline and cancellation, whatever the step type and
whichever execution mode runs it. Concurrency (``parallel`` steps and ``"execution": "dependencies"``) comes from
``concurrent.futures`` threads, which are green threads under eventlet or gevent monkey-patching and real threads
otherwise, so the engine never needs to know which pool it runs in.
"""
from __future__ import annotations

import logging
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any, Mapping

from .deadline import Deadline, wait
from .definitions import DefinitionLoader, Step, Workflow, walk_steps
from .errors import (
    InternalError,
    LimitExceeded,
    WorkflowCancelled,
    WorkflowError,
    WorkflowTimeout,
    error_context,
    is_retryable,
    utc_now_iso,
)
from .ports import (
    AnyCancelled,
    Cache,
    CancelFlag,
    CancelToken,
    Clock,
    NeverCancelled,
    NullCache,
    NullObserver,
    NullRateLimiter,
    Observer,
    ProgressCallback,
    ProviderRegistry,
    RateLimiter,
    RecordSink,
    RunListener,
    ServiceRegistry,
    SystemClock,
)
from .prompts import PromptLoader
from .references import Resolver
from .reuse import step_fingerprints
from .scheduling import dependencies
from .state import RunState
from .steps.base import SAME_AS_RESULT, Collaborators, EngineLimits, StepRun

log = logging.getLogger("llm_service.engine")


class StepFailed(Exception):
    """A step failed under ``fail`` (or ran out of retries): the workflow stops with this step's error."""

    def __init__(self, step: Step, error: BaseException, context: dict) -> None:
        super().__init__(str(error))
        self.step = step
        self.error = error
        self.context = context


class Engine:
    """Loads definitions and runs them. One instance per process; ``run`` is safe to call from many threads."""

    def __init__(self, *, workflows_dir: str | Path, services: ServiceRegistry, providers: ProviderRegistry,
                 cache: Cache | None = None, limiter: RateLimiter | None = None, clock: Clock | None = None,
                 observer: Observer | None = None, limits: EngineLimits | None = None,
                 default_execution: str = "sequential", debug: bool = False,
                 rng: random.Random | None = None) -> None:
        self.workflows_dir = Path(workflows_dir)
        known = {name: set(services.get(name).operations) for name in services.names()}
        self.definitions = DefinitionLoader(self.workflows_dir, services=known)
        self.prompts = PromptLoader(self.workflows_dir / "prompts")
        self.tools = Collaborators(
            services=services, providers=providers, cache=cache or NullCache(),
            limiter=limiter or NullRateLimiter(), prompts=self.prompts, clock=clock or SystemClock(),
            observer=observer or NullObserver(), limits=limits or EngineLimits())
        self.default_execution = default_execution
        self.debug = debug
        self.rng = rng or random.Random()

    def load(self, name: str) -> Workflow:
        return self.definitions.load(name)

    def run(self, workflow: Workflow | str, input_data: Mapping[str, Any], *,
            progress: ProgressCallback | RunListener | None = None, cancel: CancelToken | None = None,
            timeout: float | None = None, execution: str | None = None, job_id: str | None = None,
            completed_steps: Mapping[str, Mapping[str, Any]] | None = None,
            record_sink: RecordSink | None = None, include_records: bool = False) -> dict:
        """Run to completion and return ``{workflow_name, success, output, steps_executed, metadata}``.

        ``progress`` hears about each step: a :class:`RunListener`, or a callable told only of finished steps.

        Never raises for a workflow that fails, times out or is cancelled: those are results. Loading errors
        (unknown or invalid workflow) do raise, as before. Re-running from a step (``reuse.py``):
        ``completed_steps`` are full step records of an earlier run, reused instead of executing those steps;
        ``record_sink(step_id, record)`` receives each step's full record as the step finishes (so they can be
        kept for a later re-run); ``include_records`` adds them to the result as ``step_records`` with
        ``metadata.step_fingerprints`` (the CLI's RESULT.json).
        """
        if isinstance(workflow, str):
            workflow = self.load(workflow)
        run = Run(self, workflow, input_data, progress=progress, cancel=cancel or NeverCancelled(),
                  timeout=timeout, execution=execution, job_id=job_id, completed_steps=completed_steps,
                  record_sink=record_sink)
        result = run.execute()
        if include_records:
            result["step_records"] = dict(run.state.records)
            result["metadata"]["step_fingerprints"] = step_fingerprints(workflow, self.prompts)
        return result


class Run:
    """One execution of one workflow."""

    def __init__(self, engine: Engine, workflow: Workflow, input_data: Mapping[str, Any], *,
                 progress: ProgressCallback | RunListener | None, cancel: CancelToken, timeout: float | None,
                 execution: str | None, job_id: str | None,
                 completed_steps: Mapping[str, Mapping[str, Any]] | None = None,
                 record_sink: RecordSink | None = None) -> None:
        self.engine = engine
        self.tools = engine.tools
        self.workflow = workflow
        self.input_data = workflow.with_input_defaults(dict(input_data))
        self.listener = _SafeListener(progress, job_id)
        self.progress = self.listener.step_finished
        self.cancel = cancel
        self.job_id = job_id
        self.execution = execution or workflow.execution or engine.default_execution
        self.timeout = timeout or workflow.timeout_seconds
        self.state = RunState(workflow, self.input_data)
        self.deadline = Deadline(self.tools.clock, self.timeout, label=f"Workflow '{workflow.name}'")
        self.completed = dict(completed_steps or {})
        self.record_sink = record_sink
        self.reused: list[str] = []

    # -- top level ----------------------------------------------------------------------------------------------

    def execute(self) -> dict:
        started = time.monotonic()
        self._missing_input_warnings()
        error: dict | None = None
        cutoff: str | None = None
        cancelled = False
        try:
            total = self.workflow.total_steps()
            if total > self.tools.limits.max_steps:
                raise LimitExceeded(f"Workflow '{self.workflow.name}' has {total} steps; the limit is "
                                    f"{self.tools.limits.max_steps} (WORKFLOW_MAX_STEPS)")
            if self.execution == "dependencies":
                self.run_dependencies(self.workflow.steps, self.cancel)
            else:
                self.run_sequence(self.workflow.steps, self.cancel)
            output = self._final_output()
        except StepFailed as failure:
            error = failure.context
            cutoff = _last_descendant(self._top_level_of(failure.step.id))
            output = None
        except WorkflowCancelled as exc:
            cancelled = True
            error = error_context(exc)
            output = None
        except WorkflowError as exc:  # timeout, limits
            error = error_context(exc)
            output = None
        except Exception as exc:  # a bug of ours: report it, never crash the caller
            log.exception("workflow %s crashed", self.workflow.name, extra={"job_id": self.job_id})
            error = error_context(InternalError(f"Internal error: {type(exc).__name__}: {exc}"))
            output = None
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._result(output, error, cutoff, duration_ms, cancelled)

    def _result(self, output: Any, error: dict | None, cutoff: str | None, duration_ms: int,
                cancelled: bool) -> dict:
        state = self.state
        metadata: dict[str, Any] = {
            "workflow_version": self.workflow.version,
            "total_steps": len(state.order),
            "steps_completed": len(state.entries),
            "duration_ms": duration_ms,
            "total_tokens": state.total_tokens,
            "total_cost_usd": round(state.total_cost, 6),
            "llm_calls": list(state.llm_calls),
            "execution": self.execution,
        }
        if state.warnings:
            metadata["warnings"] = list(state.warnings)
        if error is not None:
            metadata["error"] = error
        if cancelled:
            metadata["cancelled"] = True
        if self.reused:
            metadata["reused_steps"] = [step_id for step_id in state.order if step_id in self.reused]
        return {
            "workflow_name": self.workflow.name,
            "success": error is None,
            "output": output,
            "steps_executed": state.entries_in_order(upto=cutoff),
            "metadata": metadata,
        }

    def _final_output(self) -> Any:
        if self.workflow.has_outputs:
            resolver = Resolver(self.state.lookup, missing="null")
            value = resolver.resolve(self.workflow.outputs)
            for warning in resolver.warnings:
                self.state.warn(f"outputs: {warning}")
            return value
        return self.state.output_of(self.workflow.steps[-1].id)

    # -- running steps ------------------------------------------------------------------------------------------

    def run_sequence(self, steps: list[Step], cancel: CancelToken) -> None:
        for step in steps:
            self.execute_step(step, cancel)

    def run_concurrently(self, steps: list[Step], width: int, cancel: CancelToken) -> None:
        """Run independent steps at once (a ``parallel`` step's children). First failure stops the rest."""
        self._run_graph(steps, {step.id: set() for step in steps}, width, cancel)

    def run_dependencies(self, steps: list[Step], cancel: CancelToken) -> None:
        width = max(1, min(self.tools.limits.parallel_max_width, len(steps)))
        needs = self.workflow.top_level_needs if steps is self.workflow.steps else dependencies(steps)
        self._run_graph(steps, needs, width, cancel)

    def _run_graph(self, steps: list[Step], needs: dict[str, set[str]], width: int, cancel: CancelToken) -> None:
        _Graph(self, steps, needs, width, cancel).execute()

    def execute_step(self, step: Step, cancel: CancelToken) -> None:
        """Run one step under its error mode; record it; report progress. Raises StepFailed under ``fail``."""
        if cancel.is_cancelled():
            raise WorkflowCancelled(f"Workflow cancelled before step '{step.id}'")
        if step.id in self.completed:
            self._reuse(step, self.completed[step.id])
            return
        position, total = self.state.order[step.id] + 1, len(self.state.order)
        self.deadline.check(f"at step {position}/{total} ('{step.id}')")
        self.listener.step_started(step.id, position, total, step.title)
        mode = self.effective_mode(step)
        executor = step.kind.execute
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            run = StepRun(step=step, state=self.state, tools=self.tools, deadline=self.deadline, cancel=cancel,
                          mode=mode, run=self)
            try:
                outcome = executor(run)
            except (WorkflowCancelled, WorkflowTimeout):
                raise
            except StepFailed as child:  # a child of a parallel/conditional step failed
                exc, context = child.error, child.context
            except Exception as err:
                if cancel.is_cancelled():
                    raise WorkflowCancelled(f"Workflow cancelled during step '{step.id}'") from err
                if self.deadline.expired():
                    raise WorkflowTimeout(f"Workflow '{self.workflow.name}' exceeded timeout "
                                          f"({self.timeout:g}s) during step '{step.id}'") from err
                exc, context = err, None
                if not isinstance(err, WorkflowError):
                    log.warning("step %s raised %s", step.id, type(err).__name__, exc_info=True,
                                extra={"job_id": self.job_id, "step_id": step.id})
            else:
                self._succeeded(step, run, outcome, started, attempts)
                return
            if mode == "retry" and attempts <= step.retry.retry_count and is_retryable(exc):
                delay = self._backoff(step, attempts, exc)
                if delay < self.deadline.remaining():
                    log.info("retrying step %s in %.2fs after %s", step.id, delay, type(exc).__name__,
                             extra={"job_id": self.job_id, "step_id": step.id})
                    wait(delay, clock=self.tools.clock, cancel=cancel, deadline=self.deadline)
                    continue
            if context is None:
                context = error_context(exc, step_id=step.id, **run.error_details)
                if self.engine.debug:  # DEBUG_MODE: the trace goes to this process's log, never into the context
                    log.warning("step %s failed: %s", step.id, context["type"], exc_info=exc,
                                extra={"job_id": self.job_id, "step_id": step.id})
            self._failed(step, run, context, started, attempts, mode)
            if mode == "continue":
                return
            raise StepFailed(step, exc, context)

    def effective_mode(self, step: Step) -> str:
        return self.workflow.error_mode_of(step)

    def _backoff(self, step: Step, attempt: int, exc: BaseException) -> float:
        """Exponential backoff with jitter from ``retry_delay``, never shorter than an upstream Retry-After."""
        base = min(step.retry.retry_delay * (2 ** (attempt - 1)), step.retry.max_delay)
        delay = base / 2 + self.engine.rng.uniform(0, base / 2)
        retry_after = exc.retry_after if isinstance(exc, WorkflowError) else None
        return max(delay, float(retry_after or 0))

    # -- recording ----------------------------------------------------------------------------------------------

    def _reuse(self, step: Step, record: Mapping[str, Any]) -> None:
        """A step completed by an earlier run: its full record stands in for executing it (and for any steps
        inside it, whose records the caller passes too)."""
        self.state.reuse(step, record)
        self.reused.append(step.id)
        entry: dict[str, Any] = {"step_id": step.id, "step_type": step.type, "duration_ms": 0,
                                 "success": bool(record.get("success")), "reused": True}
        if record.get("skipped"):
            entry["skipped"] = True
        entry["output"] = step.kind.entry_output(record)
        self._add_entry(step, entry)
        for inner in walk_steps(step.children):
            if inner.id in self.completed and inner.id not in self.state.records:
                self._reuse(inner, self.completed[inner.id])

    def _add_entry(self, step: Step, entry: dict) -> None:
        """The step's full record goes to the sink first, then its entry to the listener: a listener that saves
        at once (the worker's progress buffer) then carries both in one write."""
        if self.record_sink is not None:
            try:
                self.record_sink(step.id, self.state.records[step.id])
            except Exception:  # keeping records is for a later re-run: never fail this run over it
                log.warning("could not keep the record of step %s", step.id, exc_info=True,
                            extra={"job_id": self.job_id, "step_id": step.id})
        self.state.add_entry(step, entry, self.progress)

    def _succeeded(self, step: Step, run: StepRun, outcome: Any, started: float, attempts: int) -> None:
        duration_ms = int((time.monotonic() - started) * 1000)
        self.state.record_success(step, outcome.result, extra=outcome.record_extra)
        if outcome.llm_call is not None:
            self.state.add_llm_call(outcome.llm_call)
        entry: dict[str, Any] = {"step_id": step.id, "step_type": step.type, "duration_ms": duration_ms,
                                 "success": True}
        entry["output"] = outcome.result if outcome.entry_output is SAME_AS_RESULT else outcome.entry_output
        entry.update(outcome.entry_extra)
        self._finish_entry(step, run, entry, attempts)
        self.tools.observer.step_finished(job_id=self.job_id, step_id=step.id, step_type=step.type, success=True,
                                          duration_ms=duration_ms, error=None,
                                          cached=outcome.entry_extra.get("cached"))

    def _failed(self, step: Step, run: StepRun, context: dict, started: float, attempts: int, mode: str) -> None:
        duration_ms = int((time.monotonic() - started) * 1000)
        self.state.record_no_output(step, error=context)
        self._settle_children(step, record_entries=mode == "continue")
        entry = {"step_id": step.id, "step_type": step.type, "duration_ms": duration_ms, "success": False,
                 "error": context}
        self._finish_entry(step, run, entry, attempts)
        self.tools.observer.step_finished(job_id=self.job_id, step_id=step.id, step_type=step.type, success=False,
                                          duration_ms=duration_ms, error=context, cached=None)

    def _finish_entry(self, step: Step, run: StepRun, entry: dict, attempts: int) -> None:
        if attempts > 1:
            entry["attempts"] = attempts
        if run.warnings:
            entry["warnings"] = list(run.warnings)
            for warning in run.warnings:
                self.state.warn(f"step '{step.id}': {warning}")
        self._add_entry(step, entry)

    def _settle_children(self, step: Step, *, record_entries: bool) -> None:
        """Children of a failed parallel/conditional step that never finished read as null, like failed steps;
        when the workflow carries on (``continue``) they are listed as skipped too."""
        for inner in walk_steps(step.children):
            if inner.id not in self.state.records:
                self.state.record_no_output(inner, skipped=True)
            if record_entries and inner.id not in self.state.entries:
                self._add_entry(inner, {"step_id": inner.id, "step_type": inner.type, "duration_ms": 0,
                                        "success": False, "skipped": True})

    def record_skipped(self, steps: list[Step]) -> None:
        """Steps of a conditional branch that was not taken: recorded so references to them give null."""
        for skipped in walk_steps(steps):
            self.state.record_no_output(skipped, skipped=True)
            self._add_entry(skipped, {"step_id": skipped.id, "step_type": skipped.type, "duration_ms": 0,
                                      "success": False, "skipped": True})

    # -- helpers ------------------------------------------------------------------------------------------------

    def _top_level_of(self, step_id: str) -> Step:
        for top in self.workflow.steps:
            if any(inner.id == step_id for inner in walk_steps([top])):
                return top
        raise KeyError(step_id)

    def _missing_input_warnings(self) -> None:
        for declared in self.workflow.inputs or ():
            if declared.get("required") and declared["name"] not in self.input_data:
                self.state.warn(f"input '{declared['name']}' is declared required but was not given")

class _SafeListener:
    """The run's listener with errors contained: a failing progress hook (say, Redis blipped) must not fail the
    workflow. A plain progress callable hears only about finished steps."""

    def __init__(self, target: ProgressCallback | RunListener | None, job_id: str | None) -> None:
        self.job_id = job_id
        self._token = getattr(target, "llm_token", None) if isinstance(target, RunListener) else None
        if target is None:
            self._started = self._finished = None
        elif isinstance(target, RunListener):
            self._started, self._finished = target.step_started, target.step_finished
        else:
            self._started, self._finished = None, target

    def step_started(self, step_id: str, position: int, total: int, name: str) -> None:
        if self._started is not None:
            self._call(self._started, step_id, position, total, name)

    def step_finished(self, step_id: str, finished: int, total: int, entry: Mapping[str, Any]) -> None:
        if self._finished is not None:
            self._call(self._finished, step_id, finished, total, entry)

    @property
    def hears_tokens(self) -> bool:
        return self._token is not None

    def llm_token(self, step_id: str, delta: str) -> None:
        if self._token is not None:
            self._call(self._token, step_id, delta)

    def _call(self, hook: Any, step_id: str, *args: Any) -> None:
        try:
            hook(step_id, *args)
        except Exception:
            log.warning("progress listener failed for step %s", step_id, exc_info=True,
                        extra={"job_id": self.job_id, "step_id": step_id})


class _Graph:
    """One dependency-ordered execution of a list of steps, at most ``width`` at once.

    Each step starts once the steps it needs are done. A step that is the only one ready while nothing else runs
    is run in the calling thread (no thread is created for the parts of a workflow that are sequential anyway).
    On a ``fail``, the steps before the failed one are finished (as a sequential run would have) and the ones after
    it are cancelled, so the result matches the sequential one.
    """

    def __init__(self, run: Run, steps: list[Step], needs: dict[str, set[str]], width: int,
                 cancel: CancelToken) -> None:
        self.run, self.needs, self.width, self.cancel = run, needs, width, cancel
        self.index = {step.id: i for i, step in enumerate(steps)}
        self.pending = list(steps)
        self.done: set[str] = set()
        self.running: dict[Future, tuple[Step, CancelFlag]] = {}
        self.failure: StepFailed | None = None
        self.abort: BaseException | None = None
        self.pool: ThreadPoolExecutor | None = None

    def execute(self) -> None:
        try:
            while self.pending or self.running:
                ready = self._ready()
                if not self.running and len(ready) == 1:
                    step = ready[0]
                    self.pending.remove(step)
                    self._settle(step, lambda: self.run.execute_step(step, AnyCancelled(self.cancel, CancelFlag())))
                    continue
                for step in ready[:max(0, self.width - len(self.running))]:
                    self._start(step)
                if not self.running:
                    break
                finished, _ = wait_futures(list(self.running), return_when=FIRST_COMPLETED)
                for future in finished:
                    step, _flag = self.running.pop(future)
                    self._settle(step, future.result)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
        if self.abort is not None:
            raise self.abort
        if self.failure is not None:
            raise self.failure

    def _ready(self) -> list[Step]:
        if self.abort is not None:
            self.pending.clear()
        elif self.failure is not None:
            cutoff = self.index[self.failure.step.id]
            self.pending = [step for step in self.pending if self.index[step.id] < cutoff]
        return [step for step in self.pending if self.needs[step.id] <= self.done]

    def _start(self, step: Step) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=self.width, thread_name_prefix="step")
        self.pending.remove(step)
        flag = CancelFlag()
        self.running[self.pool.submit(self.run.execute_step, step, AnyCancelled(self.cancel, flag))] = (step, flag)

    def _settle(self, step: Step, outcome: Any) -> None:
        try:
            outcome()
        except StepFailed as exc:
            if self.failure is None or self.index[step.id] < self.index[self.failure.step.id]:
                self.failure = exc
            for other_step, other_flag in self.running.values():
                if self.index[other_step.id] > self.index[self.failure.step.id]:
                    other_flag.cancel()
        except WorkflowCancelled as exc:
            if self.cancel.is_cancelled() or self.abort is not None or self.failure is None:
                self.abort = self.abort or exc  # (a step cancelled by us after a failure elsewhere is no news)
        except BaseException as exc:  # timeout or a bug: stop everything
            self.abort = self.abort or exc
            for _, other_flag in self.running.values():
                other_flag.cancel()
        else:
            self.done.add(step.id)


def _last_descendant(step: Step) -> str:
    last = step
    for inner in walk_steps([step]):
        last = inner
    return last.id


__all__ = ["Engine", "EngineLimits", "Run", "StepFailed", "utc_now_iso"]
