"""What every step executor receives and returns.

An executor is a plain function ``(StepRun) -> StepOutcome``. It raises typed errors; the runner applies the
step's error mode (fail / continue / retry), records the outcome and reports progress, the same way for every step
type, so no executor has its own idea of error handling (the old engine had five).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..deadline import Deadline
from ..definitions import Step
from ..ports import Cache, CancelToken, Clock, Observer, ProviderRegistry, RateLimiter, ServiceRegistry
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

    def resolver(self, *, foreign: str = "error", missing: str = "error") -> Resolver:
        resolver = Resolver(self.state.lookup, foreign=foreign, missing=missing)
        resolver.warnings = self.warnings  # collect into the step's own list
        return resolver


@dataclass
class StepOutcome:
    result: Any
    record_extra: dict = field(default_factory=dict)
    entry_extra: dict = field(default_factory=dict)
    llm_call: dict | None = None
    entry_output: Any = SAME_AS_RESULT


Executor = Callable[[StepRun], StepOutcome]
