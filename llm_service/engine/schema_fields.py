"""What the workflow schema (:mod:`.definitions`) and every step type's config schema (``steps/<type>.py``) share:
lenient schemas, number fields that refuse booleans, the error-mode field, and the services known while loading.

It lives apart from :mod:`.definitions` so a step module can declare its schema without importing the loader,
which finds the step types through the registry in :mod:`.steps`.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

ERROR_MODES = ("fail", "continue", "retry")


class LenientSchema(Schema):
    """Unknown keys are ignored, as the old engine ignored them."""

    class Meta:
        unknown = EXCLUDE


class WholeNumber(fields.Integer):
    """An integer; numeric strings such as "300" are coerced, fractional numbers and booleans are not."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise ValidationError("Must be a whole number.")
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise self.make_error("invalid") from None
            if not number.is_integer():
                raise ValidationError("Must be a whole number.")
            value = int(number)
        return super()._deserialize(value, attr, data, **kwargs)


class Number(fields.Float):
    """A number (not a boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def error_mode_field() -> fields.String:
    """``error_mode`` as a step (or a step's config) may give it; None when not given."""
    return fields.String(validate=validate.OneOf(ERROR_MODES, error="Must be one of: fail, continue, retry."),
                         load_default=None, allow_none=True)


def step_list(**options: Any) -> fields.List:
    """A list of nested steps (a container step's children), loaded by the workflow's own step schema."""
    return fields.List(fields.Nested(_step_schema), **options)


def _step_schema() -> Schema:
    from .definitions import StepSchema  # lazily: the loader finds step types, whose schemas nest steps

    return StepSchema()


def alnum_id(value: str) -> bool:
    stripped = value.replace("-", "").replace("_", "")
    return bool(stripped) and stripped.isalnum()


class _LoadState(threading.local):
    services: Mapping[str, Any] | None = None


load_state = _LoadState()
"""While a definition loads: service name -> operation names, when known (None: not checked)."""
