# Slim, non-root image for both the API (default command) and the worker (docker-compose overrides the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKFLOWS_DIR=/app/workflows

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY llm_service ./llm_service
RUN pip install . && useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY wsgi.py worker.py gunicorn.conf.py ./
COPY workflows ./workflows

USER app
EXPOSE 8000
CMD ["gunicorn", "wsgi:app"]
