"""llm-service: synchronous multi-step LLM workflow engine and service."""

__version__ = "1.0.0"
