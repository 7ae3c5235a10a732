"""WSGI entry point: ``gunicorn wsgi:app`` (settings in ``gunicorn.conf.py``). Configuration comes from the
environment (see the README's table)."""
from llm_service.api import create_app
from llm_service.config import Config
from llm_service.logs import configure_logging

config = Config.from_env()
configure_logging(config.log_level, config.log_format)
app = create_app(config)
