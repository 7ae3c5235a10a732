"""Blueprints: ``meta`` at the root (no secret) and ``api_v1`` (every route behind the API secret)."""
from __future__ import annotations

from flask import Blueprint, Flask

from ..auth import require_api_secret
from . import events, jobs, meta, reruns, workflows

API_PREFIX = "/api/v1"


def register_routes(app: Flask) -> None:
    # The parent is built per app: a blueprint's children and hooks cannot change once it has been registered.
    api_v1 = Blueprint("api_v1", __name__, url_prefix=API_PREFIX)
    api_v1.before_request(require_api_secret)
    api_v1.register_blueprint(workflows.bp)
    api_v1.register_blueprint(jobs.bp)
    api_v1.register_blueprint(reruns.bp)
    api_v1.register_blueprint(events.bp)
    app.register_blueprint(meta.bp)
    app.register_blueprint(api_v1)
