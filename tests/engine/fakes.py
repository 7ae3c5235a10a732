"""In-process stand-ins for the engine's collaborators (services, providers, clock) and a workflow writer."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

from llm_service.engine import Engine, EngineLimits
from llm_service.engine.errors import ConfigurationError
from llm_service.engine.ports import ChatResponse, OperationSpec, ServiceResult

Handler = Callable[..., Any]


class FakeService:
    """A service whose operations are Python functions ``handler(params, timeout=, cancel=) -> data``."""

    def __init__(self, name: str, upstream: str = "fake://upstream", **handlers: Handler) -> None:
        self.name = name
        self.upstream = upstream
        self.handlers = handlers
        self.operations = {op: OperationSpec(op) for op in handlers}
        self.calls: list[tuple[str, dict, float]] = []
        self._lock = threading.Lock()

    def call(self, operation: str, params: dict, *, timeout: float, cancel: Any = None) -> ServiceResult:
        with self._lock:
            self.calls.append((operation, dict(params), timeout))
        data = self.handlers[operation](params, timeout=timeout, cancel=cancel)
        return ServiceResult(data, {"fake": True})


class Registry:
    def __init__(self, *items: Any, default: str | None = None) -> None:
        self.items = {item.name: item for item in items}
        self.default = default or (items[0].name if items else "")

    def get(self, name: str | None) -> Any:
        name = name or self.default
        if name not in self.items:
            raise ConfigurationError(f"Service '{name}' not found")
        return self.items[name]

    def names(self) -> list[str]:
        return list(self.items)


class FakeProvider:
    """Answers chat requests with ``reply(request) -> str`` and fixed token counts."""

    def __init__(self, reply: Callable[[Any], str] | str = "ok", *, name: str = "openrouter",
                 input_tokens: int = 100, output_tokens: int = 50, cost: float | None = None) -> None:
        self.name = name
        self.reply = reply
        self.input_tokens, self.output_tokens, self.cost = input_tokens, output_tokens, cost
        self.requests: list[Any] = []
        self.timeouts: list[float] = []

    def complete(self, request: Any, *, timeout: float, cancel: Any = None) -> ChatResponse:
        self.requests.append(request)
        self.timeouts.append(timeout)
        content = self.reply(request) if callable(self.reply) else self.reply
        return ChatResponse(content=content, input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                            total_tokens=self.input_tokens + self.output_tokens, response_id="resp-1",
                            model_used=request.model, provider_cost_usd=self.cost, duration_ms=5)


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_workflow(root: Path, definition: dict, prompts: dict[str, str] | None = None) -> str:
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    (root / "definitions" / f"{definition['name']}.json").write_text(json.dumps(definition))
    for rel, text in (prompts or {}).items():
        path = root / "prompts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return definition["name"]


def make_engine(root: Path, *services: Any, provider: Any = None, **kwargs: Any) -> Engine:
    limits = kwargs.pop("limits", EngineLimits())
    return Engine(workflows_dir=root, services=Registry(*services), providers=Registry(provider or FakeProvider()),
                  limits=limits, **kwargs)


def step(step_id: str, step_type: str, config: dict, **extra: Any) -> dict:
    return {"id": step_id, "type": step_type, "config": config, **extra}


def api_step(step_id: str, operation: str = "echo", params: dict | None = None, service: str = "fake",
             **extra: Any) -> dict:
    return step(step_id, "external_api", {"service": service, "method": operation, "parameters": params or {},
                                          "cache_ttl": 0}, **extra)


def is_green(mode: str) -> bool:
    """Whether the probes' interpreter really runs on green threads (``mode`` is eventlet, gevent or threads)."""
    if mode == "eventlet":
        from eventlet import patcher

        return bool(patcher.is_monkey_patched("thread"))
    if mode == "gevent":
        from gevent import monkey

        return bool(monkey.is_module_patched("threading"))
    return False
