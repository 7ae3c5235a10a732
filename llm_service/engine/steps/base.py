"""What every step executor receives and returns.

An executor is a plain function ``(StepRun) -> StepOutcome``. It raises typed errors; the runner applies the
step's error mode (fail / continue / retry), records the outcome and reports progress, the same way for every step
type, so no executor has its own idea of error handling (the old engine had five). A step holding other steps runs
them with :meth:`StepRun.run_children` and records the ones it will not run with :meth:`StepRun.skip`, so they get
that same treatment.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..deadline import Deadline
from ..definitions import Step
from ..ports import (
    Cache,
    CancelToken,
    Clock,
    Observer,
    ProviderRegistry,
    RateLimiter,
    ServiceRegistry,
)
from ..prompts import PromptLoader
from ..references import Resolver
from ..state import RunState

if TYPE_CHECKING:  # pragma: no cover
    from ..runner import Run

SAME_AS_RESULT = object()


@dataclass(frozen=True)
class EngineLimits:
    """Caps against resource abuse and the default upstream timeouts; all come from Config."""
    max_steps: int = 100
    parallel_max_width: int = 8
    llm_max_tokens_cap: int = 16000
    max_llm_cost_usd: float = 0.0  # 0 = no cap
    external_api_timeout: float = 30.0
    llm_timeout: float = 300.0
    cache_ttl_default: int = 604800


@dataclass
class Collaborators:
    services: ServiceRegistry
    providers: ProviderRegistry
    cache: Cache
    limiter: RateLimiter
    prompts: PromptLoader
    clock: Clock
    observer: Observer
    limits: EngineLimits


@dataclass
class StepRun:
    step: Step
    state: RunState
    tools: Collaborators
    deadline: Deadline
    cancel: CancelToken
    mode: str
    run: "Run"
    warnings: list[str] = field(default_factory=list)
    # What an error context of this step carries besides the error itself (``inputs``, ``config``), set by the
    # executor once it knows them: an operator reading a failure sees what the step sent.
    error_details: dict[str, Any] = field(default_factory=dict)

    # -- what an executor may ask of the runner --------------------------------------------------------------

    def run_children(self, steps: list[Step], *, width: int | None = None) -> None:
        """Run child steps under the runner's one policy (error modes, retries, records, progress): one after
        another, or with ``width`` up to that many at once, the first failure stopping the rest. A child that
        fails under ``fail`` raises, and this step then fails under its own error mode."""
        if width is None:
            self.run.run_sequence(steps, self.cancel)
        else:
            self.run.run_concurrently(steps, width, self.cancel)

    def skip(self, steps: list[Step]) -> None:
        """Record steps (and the steps inside them) as skipped: listed with ``skipped: true``, read as null."""
        self.run.record_skipped(steps)

    @property
    def job_id(self) -> str | None:
        return self.run.job_id

    @property
    def listener(self) -> Any:
        """The run's listener (it hears ``llm.token`` pieces of a streamed answer)."""
        return self.run.listener

    def resolver(self, *, foreign: str = "error", missing: str = "error") -> Resolver:
        resolver = Resolver(self.state.lookup, foreign=foreign, missing=missing)
        resolver.warnings = self.warnings  # collect into the step's own list
        return resolver

    def call_upstream(self, service: str, operation: str, call: Callable[[], Any]) -> Any:
        """Make one upstream call and report it (latency, status, error type) to the observer."""
        started = time.monotonic()
        try:
            answer = call()
        except Exception as exc:
            self.report_upstream(service, operation, started, status=getattr(exc, "status_code", None),
                                 error_type=getattr(exc, "kind", type(exc).__name__))
            raise
        self.report_upstream(service, operation, started, status=getattr(answer, "status", 200))
        return answer

    def report_upstream(self, service: str, operation: str, started: float, *, status: int | None,
                        cached: bool = False, error_type: str | None = None) -> None:
        self.tools.observer.upstream_call(job_id=self.job_id, service=service, operation=operation,
                                          status=status, cached=cached, error_type=error_type,
                                          duration_ms=int((time.monotonic() - started) * 1000))


@dataclass
class StepOutcome:
    result: Any
    record_extra: dict = field(default_factory=dict)
    entry_extra: dict = field(default_factory=dict)
    llm_call: dict | None = None
    entry_output: Any = SAME_AS_RESULT


Executor = Callable[[StepRun], StepOutcome]
