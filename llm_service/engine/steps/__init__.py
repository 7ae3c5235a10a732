"""Step types, one module each: every ``steps/<type>.py`` that defines ``STEP_TYPE`` (a :class:`StepType`) is
registered here, so adding a step type means adding its module (and documenting it), nothing else.

The registry is built when this package is first imported; :mod:`..definitions` imports it lazily, because the
step modules import the loader's ``Step`` themselves.
"""
from __future__ import annotations

import importlib
import pkgutil

from .step_type import Nesting, StepType


def _discover() -> dict[str, StepType]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        descriptor = getattr(importlib.import_module(f"{__name__}.{module.name}"), "STEP_TYPE", None)
        if isinstance(descriptor, StepType):
            found.append(descriptor)
    found.sort(key=lambda descriptor: (descriptor.order, descriptor.name))
    names = [descriptor.name for descriptor in found]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:  # pragma: no cover - a mistake in a new step module
        raise RuntimeError(f"step type(s) defined twice: {', '.join(duplicated)}")
    return {descriptor.name: descriptor for descriptor in found}


STEP_TYPES: dict[str, StepType] = _discover()
"""Step type name -> its descriptor, in listing order."""

__all__ = ["STEP_TYPES", "Nesting", "StepType"]
