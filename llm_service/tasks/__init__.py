"""The Celery side: app configuration, the thin task wrappers, and the per-process worker runtime.

Nothing here is imported by the engine; ``worker.py`` at the repository root is the entry point and monkey-patches
before importing any of it.
"""
