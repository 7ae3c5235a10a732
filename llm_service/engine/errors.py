"""The error model: typed exceptions, their categories, and the error context every failure is reported as.

Classification works from the exception's *type* first: every error this package raises is a
:class:`WorkflowError` subclass that already knows its category, whether a retry can help and how long to wait.
The old service's message-keyword rules (``classify_error`` etc.) remain only as the fallback for exceptions we did
not raise ourselves, so a library's unexpected ``ValueError`` still lands in a sensible category.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ..redaction import redact_text, sanitize_mapping

USER_ERROR = "USER_ERROR"
CONFIG_ERROR = "CONFIG_ERROR"
SYSTEM_ERROR = "SYSTEM_ERROR"
EXTERNAL_ERROR = "EXTERNAL_ERROR"
CATEGORIES = (USER_ERROR, CONFIG_ERROR, SYSTEM_ERROR, EXTERNAL_ERROR)


def utc_now_iso() -> str:
    """ISO-8601 UTC with a ``Z`` suffix and millisecond precision (the old ``+00:00Z`` is fixed)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WorkflowError(Exception):
    """Base of every error the engine raises; carries what the error context needs."""

    category = SYSTEM_ERROR
    retryable = False
    type_name: str | None = None  # defaults to the class name

    def __init__(self, message: str, *, step_id: str | None = None, retry_after: float | None = None,
                 retryable: bool | None = None, service: str | None = None, operation: str | None = None,
                 details: dict | None = None, suggestions: list[str] | None = None,
                 status_code: int | None = None, category: str | None = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category
        self.message = message
        self.step_id = step_id
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable
        self.service = service
        self.operation = operation
        self.details = dict(details or {})
        self.suggestions = list(suggestions or [])
        self.status_code = status_code

    @property
    def kind(self) -> str:
        return self.type_name or type(self).__name__

    def reworded(self, prefix: str) -> "WorkflowError":
        """The same error (type, category, retry advice) with its message prefixed, once: the old service's
        step-level wording (``LLM step 'x' execution failed: ...``) is what client apps show their users."""
        if not self.message.startswith(prefix):
            self.message = prefix + self.message
            self.args = (self.message,)
        return self

    def __str__(self) -> str:
        return self.message


class ConfigurationError(WorkflowError):
    """The workflow definition, a prompt file or the service configuration is wrong; fix it, do not retry."""
    category = CONFIG_ERROR


class MissingCredentialError(ConfigurationError):
    """A step needs an API key that is not configured; the message names the environment variable."""


class UserInputError(WorkflowError):
    """The job's input (or a value derived from it) is not usable."""
    category = USER_ERROR


class ReferenceError_(WorkflowError):
    """A ``${...}`` reference could not be resolved."""
    type_name = "ReferenceError"
    category = USER_ERROR


class TransformError(WorkflowError):
    """A transform operation could not process its data."""
    category = USER_ERROR


class PromptError(ConfigurationError):
    """A prompt template or one of its includes is missing, circular or outside the prompts root."""


class LimitExceeded(WorkflowError):
    """A configured cap (tokens, spend, steps, parallel width) was reached."""
    category = USER_ERROR


class InternalError(WorkflowError):
    type_name = "SystemError"
    category = SYSTEM_ERROR


class ExternalAPIError(WorkflowError):
    """An upstream service failed. Subclasses say how."""
    category = EXTERNAL_ERROR


class UpstreamTimeout(ExternalAPIError):
    type_name = "TimeoutError"
    retryable = True


class UpstreamConnectionError(ExternalAPIError):
    type_name = "ConnectionError"
    retryable = True


class UpstreamAuthError(ExternalAPIError):
    type_name = "AuthenticationError"
    retryable = False


class UpstreamRateLimited(ExternalAPIError):
    """The upstream said 429 / quota exceeded; ``retry_after`` comes from its ``Retry-After`` when given."""
    type_name = "RateLimitError"
    retryable = True


class UpstreamServerError(ExternalAPIError):
    type_name = "ServerError"
    retryable = True


class UpstreamHTTPError(ExternalAPIError):
    """A 4xx other than auth / rate limit: our request was wrong, retrying will not help."""
    type_name = "HTTPError"
    retryable = False


class UpstreamBadResponse(ExternalAPIError):
    """Malformed JSON, wrong content type, a body over the size limit, or a missing field."""
    type_name = "BadResponseError"
    retryable = True


class RateLimitExceeded(ExternalAPIError):
    """Our own limiter refused the call (per service or per user)."""
    retryable = True


class BlockedAddressError(ExternalAPIError):
    """The SSRF guard refused to connect (private, loopback, link-local or reserved address)."""
    category = USER_ERROR
    retryable = False


class WorkflowTimeout(WorkflowError):
    """The workflow's deadline passed."""
    category = EXTERNAL_ERROR
    retryable = True


class WorkflowCancelled(WorkflowError):
    """Somebody cancelled the job; not a failure of the workflow."""
    category = USER_ERROR


# --------------------------------------------------------------------------------------------------------------
# Fallback classification for exceptions we did not raise (the old keyword rules, §7.3-7.6).

_CONFIG_WORDS = ("api key", "missing key", "invalid key", "not configured", "no api key")
_USER_WORDS = ("invalid input", "validation failed", "required field", "bad request", "invalid parameter")
_EXTERNAL_TYPE_WORDS = ("Timeout", "Connection", "HTTP", "Request")
_EXTERNAL_WORDS = ("timeout", "timed out", "connection refused", "connection failed", "network", "unreachable")
_NOT_RETRYABLE_WORDS = ("invalid key", "authentication", "forbidden", "not found", "bad request", "validation",
                        "400", "401", "403", "404")
_RETRYABLE_WORDS = ("timeout", "timed out", "connection", "temporary", "unavailable", "rate limit",
                    "too many requests", "server error", "503", "502", "504")
_RETRY_AFTER_RE = re.compile(r"retry[-\s]?after[:\s]\s*(\d+)", re.IGNORECASE)


def classify(exc: BaseException) -> str:
    if isinstance(exc, WorkflowError):
        return exc.category
    msg, name = str(exc).lower(), type(exc).__name__
    if any(w in msg for w in _CONFIG_WORDS):
        return CONFIG_ERROR
    if any(w in msg for w in _USER_WORDS) or name == "ValueError":
        return USER_ERROR
    if any(w in name for w in _EXTERNAL_TYPE_WORDS) or any(w in msg for w in _EXTERNAL_WORDS):
        return EXTERNAL_ERROR
    return SYSTEM_ERROR


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, WorkflowError):
        return bool(exc.retryable)
    msg, name = str(exc).lower(), type(exc).__name__
    if any(w in msg for w in _NOT_RETRYABLE_WORDS):
        return False
    if "Timeout" in name or "Connection" in name:
        return True
    if any(w in msg for w in _RETRYABLE_WORDS):
        return True
    if "HTTP" in name:
        match = re.search(r"\b([45]\d\d)\b", msg)
        if match:
            return int(match.group(1)) >= 500
    return False


def retry_after_of(exc: BaseException) -> float | None:
    """Advice for whoever resubmits (the old classifier's figures: 60 s for rate limits without a Retry-After,
    30 s for timeouts). The engine's own retries never wait on this: they honour only ``exc.retry_after``, a real
    upstream header."""
    if isinstance(exc, WorkflowError):
        if exc.retry_after is not None:
            return exc.retry_after
        if isinstance(exc, (UpstreamTimeout, WorkflowTimeout)):
            return 30
        if isinstance(exc, (UpstreamRateLimited, RateLimitExceeded)):
            return 60
        return None
    msg = str(exc)
    match = _RETRY_AFTER_RE.search(msg)
    if match:
        return int(match.group(1))
    lowered = msg.lower()
    if "rate limit" in lowered or "429" in msg:
        return 60
    if "Timeout" in type(exc).__name__ or "timeout" in lowered or "timed out" in lowered:
        return 30
    return None


def suggestions_for(exc: BaseException, service: str | None = None) -> list[str]:
    """Short, actionable hints. Wording is not a contract; the tested substrings are."""
    msg, name = str(exc).lower(), type(exc).__name__
    tips: list[str] = []
    if "event loop" in msg or "loop is closed" in msg:
        tips += ["This is a worker-pool problem, not an input problem: check the Celery worker logs.",
                 "Restart the worker; report the job id if it repeats."]
    if isinstance(exc, (UpstreamAuthError, MissingCredentialError)) or any(
            w in msg for w in ("api key", "authentication", "unauthorized", "401", "403")):
        target = (service or "API").upper()
        tips += [f"Check that the {target} api key is set in the environment and valid.",
                 "Confirm the key has access to this operation."]
    if isinstance(exc, (UpstreamRateLimited, RateLimitExceeded)) or "rate limit" in msg or "429" in msg:
        wait = retry_after_of(exc)
        tips += [f"Wait {int(wait)} seconds before retrying." if wait else "Wait before retrying.",
                 "Reduce request frequency or raise the configured limit."]
    if isinstance(exc, (UpstreamTimeout, WorkflowTimeout)) or "Timeout" in name or "timed out" in msg \
            or "timeout" in msg:
        tips += ["The upstream service is slow: retry the job, or use error_mode 'retry' on the step.",
                 "Raise the step's timeout or the workflow's timeout_seconds if the work is legitimately slow."]
    if isinstance(exc, UpstreamConnectionError) or "connection" in msg:
        tips += ["Check network connectivity to the upstream service and its base URL setting."]
    if isinstance(exc, (UserInputError, UpstreamHTTPError)) or "validation" in msg or "invalid" in msg:
        tips += ["Check the input values and parameter formats the step sends."]
    if isinstance(exc, UpstreamServerError) or any(w in msg for w in ("500", "502", "503", "504", "server error")):
        tips += ["The upstream service had an internal error; retrying later usually helps."]
    if service == "google_places":
        tips += ["Ensure the Places API is enabled for the key, and check quota and billing."]
    elif service == "weatherapi":
        tips += ["Check the WeatherAPI subscription quota and that coordinates are valid."]
    return list(dict.fromkeys(tips))


def error_context(exc: BaseException, *, step_id: str | None = None, service: str | None = None,
                  operation: str | None = None, inputs: Any = None, config: Any = None) -> dict:
    """The structured error every failure is reported as (results, job records, webhooks).

    ``retry_after`` and ``suggestions`` appear at the top level and inside ``details`` (where the old service put
    them), and are never dropped for lack of other details. Suggestions given to the error win over generated
    ones. Never a stack trace: contexts travel to Redis, the API and webhooks, and a trace names server paths
    (``DEBUG_MODE`` puts traces in the worker's log instead, see :func:`trace_text`).
    """
    if isinstance(exc, WorkflowError):
        step_id = step_id or exc.step_id
        service = service or exc.service
        operation = operation or exc.operation
    kind = exc.kind if isinstance(exc, WorkflowError) else type(exc).__name__
    retry_after = retry_after_of(exc)
    retryable = is_retryable(exc)
    given = exc.suggestions if isinstance(exc, WorkflowError) else []
    suggestions = list(given) or suggestions_for(exc, service)
    ctx: dict[str, Any] = {
        "type": kind,
        "category": classify(exc),
        "message": redact_text(str(exc)) or kind,
        "timestamp": utc_now_iso(),
        "retryable": retryable,
        "retry_after": retry_after if retryable else None,
        "step_id": step_id,
    }
    details: dict[str, Any] = {}
    if service:
        details["service"] = service
    if operation:
        details["operation"] = operation
    if inputs:
        details["inputs"] = sanitize_mapping(inputs)
    if config:
        details["config"] = sanitize_mapping(config)
    if isinstance(exc, WorkflowError):
        if exc.status_code is not None:
            details["status_code"] = exc.status_code
        for key, value in exc.details.items():
            details.setdefault(key, value)
    if ctx["retry_after"] is not None:
        details["retry_after"] = ctx["retry_after"]
    if suggestions:
        details["suggestions"] = suggestions
        ctx["suggestions"] = suggestions
    ctx["details"] = details
    return ctx

