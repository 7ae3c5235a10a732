"""The external API step: resolve parameters, consult the cache, take a rate-limit slot, call the service.

The old worker skipped the cache and the limiter entirely and ignored the step's ``error_mode``; here both are
wired in (fail-open: their own failures never fail the step) and errors are typed so the runner's one error-mode
policy applies. Result shape as before: ``{success, data, cached, metadata}``.
"""
from __future__ import annotations

import time

from ..definitions import ExternalAPISettings
from ..errors import RateLimitExceeded, WorkflowError
from .base import StepOutcome, StepRun


def run_external_api(run: StepRun) -> StepOutcome:
    settings: ExternalAPISettings = run.step.settings
    tools = run.tools
    params = run.resolver().resolve(settings.parameters)
    run.error_details = {"inputs": params, "config": run.step.config}
    service = tools.services.get(settings.service)

    ttl = tools.limits.cache_ttl_default if settings.cache_ttl is None else settings.cache_ttl
    upstream = service.upstream
    cached = tools.cache.get(settings.service, settings.operation, params, upstream=upstream) if ttl > 0 else None
    if cached is not None:
        run.report_upstream(settings.service, settings.operation, time.monotonic(), status=None, cached=True)
        return _outcome({"success": True, "data": cached, "cached": True, "metadata": {}})

    user_id = run.state.input_data.get("user_id") if isinstance(run.state.input_data, dict) else None
    user = str(user_id) if user_id else None
    refused = tools.limiter.acquire(settings.service, user)
    if refused is not None:
        limit_type, retry_after = refused
        raise RateLimitExceeded(f"Rate limit exceeded ({limit_type}). Retry after {int(retry_after)}s",
                                retry_after=retry_after, service=settings.service, operation=settings.operation)
    timeout = run.deadline.timeout_for(settings.timeout or tools.limits.external_api_timeout)
    try:
        answer = run.call_upstream(settings.service, settings.operation,
                                   lambda: service.call(settings.operation, params, timeout=timeout,
                                                        cancel=run.cancel))
    except Exception as exc:
        tools.limiter.release(settings.service, user)
        if isinstance(exc, WorkflowError):
            exc.service = exc.service or settings.service
            exc.operation = exc.operation or settings.operation
        raise
    if ttl > 0:
        tools.cache.set(settings.service, settings.operation, params, answer.data, ttl, upstream=upstream)
    return _outcome({"success": True, "data": answer.data, "cached": False, "metadata": answer.metadata})


def _outcome(result: dict) -> StepOutcome:
    return StepOutcome(result=result, entry_extra={"cached": result["cached"]})
