"""Endpoints without the API secret: service info, health, metrics, the OpenAPI document and its interactive docs."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from markupsafe import escape
from swagger_ui_bundle import swagger_ui_path

from ..context import api_context
from ..endpoints import Failure, Reply, endpoint, respond
from ..errors import ApiError
from ..metrics import metrics_response
from ..openapi import build_openapi
from ..schemas import HealthSchema, RootSchema

bp = Blueprint("meta", __name__)

# Swagger UI's files come from the swagger-ui-bundle package (swagger-ui's dist files, installed with the service),
# so /docs works without internet and loads nothing from another host.
DOCS_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
               "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API docs</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                                  persistAuthorization: true}});
  </script>
</body>
</html>
"""
_HEALTH_EXAMPLE = {
    "status": "degraded",
    "services": {"redis": {"status": "healthy"}, "database": {"status": "healthy"},
                 "celery": {"status": "no_workers", "workers": 0}},
    "version": "1.0.0", "timestamp": "2026-01-15T10:00:00.123Z",
}
_REDIS_DOWN = {"status": "unhealthy", "error": "ConnectionError: Error 111 connecting to redis:6379."}


@bp.get("/")
@endpoint(summary="Service information", tag="service", protected=False,
          replies=[Reply(200, "Name, version and where the docs are", RootSchema, {
              "service": "LLM Workflow Microservice", "version": "1.0.0", "status": "online", "docs": "/docs"})])
def root() -> Response:
    config = api_context().config
    return respond(RootSchema, {"service": config.api_title, "version": config.api_version, "status": "online",
                                "docs": "/docs"})


@bp.get("/health")
@endpoint(summary="Health of Redis and the workers", tag="service", protected=False,
          description="One Redis read (1 s timeout) of the workers' heartbeat keys: it answers in milliseconds. "
                      "`unhealthy` (503) when Redis does not answer (no job can be stored); `degraded` (200) when "
                      "no worker heartbeat is live (jobs are accepted but wait). A worker that dies drops out "
                      "after `WORKER_HEARTBEAT_TTL_SECONDS`. `database` mirrors `redis` (the job store).",
          replies=[Reply(200, "Healthy or degraded", HealthSchema, _HEALTH_EXAMPLE),
                   Reply(503, "Unhealthy: Redis is unreachable", HealthSchema, {
                       **_HEALTH_EXAMPLE, "status": "unhealthy",
                       "services": {"redis": _REDIS_DOWN, "database": _REDIS_DOWN,
                                    "celery": {"status": "unavailable"}}})])
def health() -> Response:
    body, status = api_context().health.report()
    return respond(HealthSchema, body, status)


@bp.get("/metrics")
@endpoint(summary="Prometheus metrics", tag="service", protected=False,
          description="Prometheus text exposition: API requests by endpoint and status, their latency, job "
                      "submissions, and jobs per status and queue depth read from Redis at scrape time (left out, "
                      "with `llm_job_store_up 0`, when Redis does not answer). Under gunicorn the "
                      "request counters are summed over all API processes (prometheus_client multiprocess mode, "
                      "`PROMETHEUS_MULTIPROC_DIR`).",
          replies=[Reply(200, "Metrics in the Prometheus text format", media_type="text/plain")])
def metrics() -> Response:
    return metrics_response()


@bp.get("/openapi.json")
@endpoint(summary="This OpenAPI document", tag="service", protected=False,
          replies=[Reply(200, "OpenAPI 3 document")])
def openapi_document() -> Response:
    ctx = api_context()
    if ctx.openapi is None:
        ctx.openapi = build_openapi(current_app, ctx.config)
    return jsonify(ctx.openapi)


@bp.get("/docs")
@endpoint(summary="Interactive API documentation (Swagger UI)", tag="service", protected=False,
          replies=[Reply(200, "HTML page", media_type="text/html")])
def docs() -> Response:
    html = _DOCS_PAGE.format(title=escape(api_context().config.api_title))
    return Response(html, mimetype="text/html")


@bp.get("/docs/assets/<filename>")
@endpoint(summary="Swagger UI's files for /docs", tag="service", protected=False,
          description="Served from the installed swagger-ui-bundle package: " + ", ".join(DOCS_ASSETS) + ".",
          path_params={"filename": "One of " + ", ".join(DOCS_ASSETS)},
          replies=[Reply(200, "The file", media_type="application/octet-stream")],
          failures=[Failure(404, "NotFound", "Not one of the files /docs uses")])
def docs_asset(filename: str) -> Response:
    if filename not in DOCS_ASSETS:
        raise ApiError(404, "NotFound", f"No docs asset named {filename[:100]!r}")
    return send_from_directory(swagger_ui_path, filename, mimetype=DOCS_ASSETS[filename], max_age=86400)
