"""The workflow engine: a plain library (no Flask, Celery or Redis imports).

It receives its collaborators (service and provider registries, cache, rate limiter, clock, observer) as arguments;
``llm_service.services`` wires the real ones for the CLI and the worker. Each step type is one module,
``steps/<type>.py``, registered by ``steps/__init__.py`` (see "Adding a step type" in docs/workflows.md).
"""
from .definitions import Workflow, WorkflowInvalid, WorkflowLoadError, WorkflowNotFound
from .errors import WorkflowError
from .runner import Engine
from .steps.base import EngineLimits

__all__ = ["Engine", "EngineLimits", "Workflow", "WorkflowError", "WorkflowInvalid", "WorkflowLoadError",
           "WorkflowNotFound"]
