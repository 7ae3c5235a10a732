"""LLM cost: the provider's own figure when it reports one, else the old 13-model price table.

Prices are USD per million tokens (input, output), exactly the old service's table, so historical cost reports
stay comparable.
"""
from __future__ import annotations

import math
from typing import Mapping

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "anthropic/claude-3.5-sonnet": (3.0, 15.0),
    "anthropic/claude-opus-4": (15.0, 75.0),
    "anthropic/claude-3-haiku": (0.25, 1.25),
    "anthropic/claude-3-opus": (15.0, 75.0),
    "anthropic/claude-3-sonnet": (3.0, 15.0),
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
    "openai/gpt-4-turbo": (10.0, 30.0),
    "openai/gpt-3.5-turbo": (0.5, 1.5),
    "google/gemini-pro": (0.5, 1.5),
    "google/gemini-pro-1.5": (0.35, 1.05),
    "meta-llama/llama-3.1-70b-instruct": (0.88, 0.88),
    "meta-llama/llama-3.1-405b-instruct": (5.0, 15.0),
}


def estimate_tokens(text: str) -> int:
    """Tokens in a text, approximated as one per four characters (rounded up): close to the usual BPE
    tokenizers for English prose and JSON, and no tokenizer download needed. Used for estimates, never billing."""
    return math.ceil(len(text) / 4) if text else 0


def get_pricing(model: str, table: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    return (table or PRICES_PER_MILLION).get(model)


def is_supported_model(model: str) -> bool:
    return model in PRICES_PER_MILLION


def list_models() -> list[str]:
    return list(PRICES_PER_MILLION)


def calculate_cost(model: str, input_tokens: int, output_tokens: int,
                   table: Mapping[str, tuple[float, float]] | None = None) -> float:
    """(in × in_price + out × out_price) / 1e6, rounded to 6 decimals; unknown model or no tokens → 0.0."""
    prices = get_pricing(model, table)
    if prices is None or (input_tokens == 0 and output_tokens == 0):
        return 0.0
    return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 6)


def choose_cost(*, requested_model: str, reported_model: str | None, input_tokens: int, output_tokens: int,
                provider_cost: float | None) -> tuple[float, str]:
    """Return ``(cost_usd, source)`` where source is ``"provider"`` or ``"price_table"``.

    The table is looked up by the model the provider says it used when that model is priced (the old service
    priced the requested id even when the provider routed elsewhere), else by the requested one.
    """
    if provider_cost is not None and provider_cost >= 0:
        return round(float(provider_cost), 6), "provider"
    model = reported_model if reported_model and reported_model in PRICES_PER_MILLION else requested_model
    return calculate_cost(model, input_tokens, output_tokens), "price_table"
