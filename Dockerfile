# Slim, non-root image for the API (default command), the worker and the sandbox upstream (docker-compose sets the
# command). Dependencies are one layer built from setup.cfg alone, so a code change rebuilds only the source layers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    WORKFLOWS_DIR=/app/workflows

WORKDIR /app
# 1. Dependencies (install_requires plus the "all" extra): changes only when setup.cfg does.
COPY setup.cfg scripts/requirements-from-setup-cfg ./
RUN python requirements-from-setup-cfg setup.cfg all > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt requirements-from-setup-cfg \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
# 2. The service itself, run from /app (PYTHONPATH): no build step, so this layer is cheap.
COPY wsgi.py worker.py gunicorn.conf.py ./
COPY workflows ./workflows
COPY llm_service ./llm_service

USER app
EXPOSE 8000
CMD ["gunicorn", "wsgi:app"]
