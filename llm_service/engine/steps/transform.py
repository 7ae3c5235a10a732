"""The transform step: choose the input, resolve the parameters, run one of the ten operations.

Input selection is the old engine's: ``config.input`` (a path, with or without the ``${}`` wrapper), else a
non-null ``source`` parameter, else the whole context. Placeholders in parameters whose first segment is not a
namespace (template variables such as ``${hospitals}``) are left for the operation.
"""
from __future__ import annotations

from typing import Any

from ..definitions import TransformSettings
from ..transforms import run_transform
from .base import StepOutcome, StepRun

# Operations that read a literal ``source`` as a key of their input rather than as the input itself.
_KEY_SOURCE_OPERATIONS = ("extract_fields", "markdown_to_json")


def run_transform_step(run: StepRun) -> StepOutcome:
    settings: TransformSettings = run.step.settings
    params = run.resolver(foreign="keep").resolve(settings.params)
    data = _select_input(run, settings, params)
    result = run_transform(settings.operation, data, params, lenient=run.mode == "continue")
    return StepOutcome(result=result)


def _select_input(run: StepRun, settings: TransformSettings, params: dict) -> Any:
    if settings.input:
        path = settings.input.strip()
        if path.startswith("${") and path.endswith("}"):
            path = path[2:-1]
        return run.state.lookup(path)
    raw_source = settings.params.get("source")
    literal_key = isinstance(raw_source, str) and "${" not in raw_source
    if "source" in params and params["source"] is not None and not (
            literal_key and settings.operation in _KEY_SOURCE_OPERATIONS):
        return params.pop("source")
    return run.state.context_map()
