"""Sandbox upstream: a local, clearly labelled fake of every API llm-service calls.

It answers like WeatherAPI, Google Places (legacy JSON) and an OpenAI-compatible chat-completions API with
deterministic fake data and configurable latency, receives webhooks (checking both signature schemes), and can
inject faults. Used by ``make dev`` (no API keys needed), integration tests, benchmarks and reliability tests.

    from llm_service.sandbox import SandboxServer
    with SandboxServer(latency_ms=200) as sandbox:
        env = sandbox.base_urls()   # WEATHERAPI_BASE_URL, GOOGLE_PLACES_BASE_URL, OPENROUTER_BASE_URL, ...

Run it as a program with ``python -m llm_service.sandbox --port 8900``.
"""
from .server import SandboxServer

__all__ = ["SandboxServer"]
