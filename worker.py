"""Celery worker entry point: ``celery -A worker worker --pool=eventlet --concurrency=N``.

Monkey-patching happens first, before any other import, for the green pool named on the command line (eventlet or
gevent); ``--pool=threads`` needs none. The same code runs under all three: that is the one-flag way out of
eventlet, which is deprecated upstream.
"""
import sys

from llm_service.tasks.bootstrap import monkey_patch_for

POOL = monkey_patch_for(sys.argv)

from llm_service.tasks.worker_app import create_worker_app  # noqa: E402

app = create_worker_app(sys.argv)
