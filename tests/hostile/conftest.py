"""The API test fixtures (``make_api``, ``api``, ``prefix``, ``workflows_dir``: a Flask app over real Redis db 15
under a per-test key prefix, with a recording job queue and a temporary workflows directory), reused as they are."""
from tests.api.conftest import api, make_api, prefix, workflows_dir  # noqa: F401  (pytest fixtures)
