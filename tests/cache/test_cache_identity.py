"""Cached upstream answers are keyed by who answered: the sandbox's fake weather is never served to a real run."""
from __future__ import annotations

import responses

from llm_service import services
from llm_service.cache import RedisCache, cache_key
from llm_service.http import build_http_client
from tests.engine.fakes import api_step, write_workflow

SANDBOX = "http://sandbox.test/weatherapi/v1"
REAL = "https://weather.test/v1"


def _engine(make_config, tmp_path, base_url, cache):
    config = make_config(env={"WEATHERAPI_BASE_URL": base_url}, workflows_dir=str(tmp_path))
    engine = services.build_engine(config, http=build_http_client(config), redis_client=None)
    engine.tools.cache = cache
    return engine


def test_the_same_request_to_another_upstream_is_not_a_cache_hit(make_config, tmp_path, redis_client, redis_prefix):
    step = api_step("w", "current", {"q": "Seattle"}, service="weatherapi")
    step["config"]["cache_ttl"] = 600
    name = write_workflow(tmp_path, {"name": "weather", "steps": [step]})
    cache = RedisCache(redis_client, prefix=redis_prefix)
    with responses.RequestsMock() as mock:
        fake = mock.get(f"{SANDBOX}/current.json", json={"current": {"temp_c": 99}, "sandbox": True})
        real = mock.get(f"{REAL}/current.json", json={"current": {"temp_c": 9}})
        sandboxed = _engine(make_config, tmp_path, SANDBOX, cache).run(name, {})
        first = _engine(make_config, tmp_path, REAL, cache).run(name, {})
        again = _engine(make_config, tmp_path, REAL, cache).run(name, {})
    assert sandboxed["output"]["data"]["current"]["temp_c"] == 99
    assert first["output"]["cached"] is False and first["output"]["data"]["current"]["temp_c"] == 9
    assert again["output"]["cached"] is True and again["output"]["data"]["current"]["temp_c"] == 9
    assert (fake.call_count, real.call_count) == (1, 1)


def test_the_upstream_is_part_of_the_key_and_no_upstream_keeps_the_old_key():
    params = {"q": "Seattle"}
    assert cache_key("weatherapi", "current", params, SANDBOX) != cache_key("weatherapi", "current", params, REAL)
    assert cache_key("weatherapi", "current", params) == cache_key("weatherapi", "current", params, "")
