"""ScriptPipeline: Lua calls in a pipeline without a SCRIPT EXISTS check first, still correct when a script is not
loaded (a restarted or flushed Redis) and still raising a call's error."""
from __future__ import annotations

import uuid

import pytest
import redis

from llm_service.jobs.pipeline import ScriptPipeline


def never_loaded(client: redis.Redis, body: str) -> object:
    # A comment unique to this test makes a script Redis has never seen (so its EVALSHA answers NOSCRIPT).
    return client.register_script(f"-- {uuid.uuid4().hex}\n{body}")


def test_unloaded_scripts_are_loaded_and_their_calls_sent_again_in_order(r, prefix):
    key = f"{prefix}:pipeline"
    append = never_loaded(r, "return redis.call('RPUSH', KEYS[1], ARGV[1])")
    echo = never_loaded(r, "return ARGV[1]")
    pipe = ScriptPipeline.of(r)
    pipe.set(f"{key}:plain", "a")
    append(keys=[key], args=["first"], client=pipe)
    echo(args=["echoed"], client=pipe)
    append(keys=[key], args=["second"], client=pipe)
    pipe.get(f"{key}:plain")
    replies = pipe.execute()
    assert [x.decode() if isinstance(x, bytes) else x for x in replies] == [True, 1, "echoed", 2, "a"]
    assert [x.decode() if isinstance(x, bytes) else x for x in r.lrange(key, 0, -1)] == ["first", "second"]
    assert r.script_exists(append.sha, echo.sha) == [True, True]
    r.delete(key, f"{key}:plain")


def test_a_failing_call_still_raises_unless_errors_are_asked_for(r):
    broken = r.register_script("return redis.error_reply('boom')")
    r.script_load(broken.script)
    pipe = ScriptPipeline.of(r)
    broken(client=pipe)
    with pytest.raises(redis.exceptions.ResponseError, match="boom"):
        pipe.execute()
    broken(client=pipe)
    pipe.ping()
    failed, pong = pipe.execute(raise_on_error=False)
    assert isinstance(failed, redis.exceptions.ResponseError) and pong is True
