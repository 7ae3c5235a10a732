"""A Redis pipeline for Lua calls that does not ask the server first whether its scripts are loaded.

redis-py sends ``SCRIPT EXISTS`` (a full round trip) before every pipeline that calls a registered script. The job
store's pipelines are the worker's ``finish`` and progress saves, so that check was one of a short job's few round
trips, on every job. Scripts stay loaded until Redis restarts or they are flushed, so this pipeline sends its
``EVALSHA`` calls at once; in the rare case a reply is ``NOSCRIPT`` it loads the pipeline's scripts and sends the
calls that got it again, in their order. That is what redis-py itself does for a script called outside a pipeline.
"""
from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError


class ScriptPipeline(Pipeline):
    """``redis.Redis.pipeline(transaction=False)`` without the ``SCRIPT EXISTS`` round trip (see the module)."""

    @classmethod
    def of(cls, client: redis.Redis) -> "ScriptPipeline":
        return cls(client.connection_pool, client.response_callbacks, False, None)

    def load_scripts(self) -> None:
        """Nothing up front: :meth:`execute` loads scripts only when a call finds one missing."""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        commands, scripts = list(self.command_stack), list(self.scripts)
        replies = super().execute(raise_on_error=False)
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            client = redis.Redis(connection_pool=self.connection_pool)
            for script in scripts:
                script.sha = client.script_load(script.script)
            again = client.pipeline(transaction=False)  # holds no script objects, so it checks nothing either
            for index in missing:
                args, options = commands[index]
                again.execute_command(*args, **options)
            for index, reply in zip(missing, again.execute(raise_on_error=False)):
                replies[index] = reply
        if raise_on_error:
            self.raise_first_error(commands, replies)
        return replies
