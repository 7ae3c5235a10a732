"""The client contract runs against the whole service in one process (``tests.inprocess_stack``)."""
from tests.inprocess_stack import make_stack, sandbox  # noqa: F401 (fixtures)
