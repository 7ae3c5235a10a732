"""Step executors, one module per step type; the runner looks them up here by ``type``."""
from .base import Executor
from .conditional import run_conditional
from .external_api import run_external_api
from .llm import run_llm
from .parallel import run_parallel
from .transform import run_transform_step

EXECUTORS: dict[str, Executor] = {
    "llm": run_llm,
    "transform": run_transform_step,
    "external_api": run_external_api,
    "parallel": run_parallel,
    "conditional": run_conditional,
}
