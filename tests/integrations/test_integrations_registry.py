"""Registries and the builders that assemble services and providers from Config."""
import json

import pytest
from responses import matchers

from llm_service.config import Config
from llm_service.engine.errors import ConfigurationError, MissingCredentialError
from llm_service.engine.ports import ChatRequest
from llm_service.integrations import (GooglePlacesService, ProviderRegistryImpl, ServiceRegistryImpl,
                                      WeatherAPIService, build_http_client, build_providers, build_services)

ENV = {
    "OPENROUTER_API_KEY": "sk-or-reg-1111", "OPENROUTER_BASE_URL": "https://router.example.test/api/v1/",
    "OPENAI_API_KEY": "sk-oa-reg-2222", "OPENAI_BASE_URL": "https://openai.example.test/v1",
    "LLM_PROVIDER_LOCALAI_BASE_URL": "https://localai.example.test/v1",
    "LLM_PROVIDER_LOCALAI_API_KEY": "sk-local-3333",
    "LLM_PROVIDER_NOKEY_BASE_URL": "https://nokey.example.test/v1",
    "LLM_HTTP_REFERER": "https://app.example.test", "LLM_APP_TITLE": "Example App",
    "WEATHERAPI_API_KEY": "wx-reg-4444", "WEATHERAPI_BASE_URL": "https://weather.example.test/v1",
    "GOOGLE_PLACES_API_KEY": "gp-reg-5555", "GOOGLE_PLACES_BASE_URL": "https://places.example.test/place",
}
CHAT_OK = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


def chat(provider):
    return provider.complete(ChatRequest(model="m", messages=[{"role": "user", "content": "x"}], temperature=0.1,
                                         max_tokens=5), timeout=5)


def test_service_registry_get_and_names(http):
    weather = WeatherAPIService(http, api_key="k", base_url="https://w")
    places = GooglePlacesService(http, api_key="k", base_url="https://p")
    registry = ServiceRegistryImpl([weather, places])
    assert registry.names() == ["weatherapi", "google_places"]
    assert registry.get("weatherapi") is weather
    with pytest.raises(ConfigurationError) as info:
        registry.get("yelp")
    assert str(info.value) == "Service 'yelp' not found. Available services: ['weatherapi', 'google_places']"


def test_registries_refuse_duplicate_names(http):
    weather = WeatherAPIService(http, api_key="k", base_url="https://w")
    with pytest.raises(ConfigurationError, match="registered twice"):
        ServiceRegistryImpl([weather, weather])


def test_build_services_uses_config_keys_and_base_urls(mock, http):
    services = build_services(Config.from_env(ENV), http)
    mock.get("https://weather.example.test/v1/current.json", json={"current": {}},
             match=[matchers.query_param_matcher({"key": "wx-reg-4444", "q": "x"})])
    mock.get("https://places.example.test/place/textsearch/json", json={"status": "OK", "results": []},
             match=[matchers.query_param_matcher({"key": "gp-reg-5555", "query": "x"})])
    assert services.get("weatherapi").call("current", {"q": "x"}, timeout=5).status == 200
    assert services.get("google_places").call("text_search", {"query": "x"}, timeout=5).data["status"] == "OK"


def test_google_key_falls_back_to_the_old_variable(mock, http):
    services = build_services(Config.from_env({"NEXT_PUBLIC_GOOGLE_SERVICES_API_KEY": "gp-old-6666"}), http)
    mock.get("https://maps.googleapis.com/maps/api/place/details/json", json={"status": "OK", "result": {}},
             match=[matchers.query_param_matcher({"key": "gp-old-6666", "place_id": "p"})])
    assert services.get("google_places").call("place_details", {"place_id": "p"}, timeout=5).status == 200


def test_build_providers_default_and_names(http):
    providers = build_providers(Config.from_env(ENV), http)
    assert providers.names() == ["openrouter", "openai", "localai", "nokey"]
    assert providers.default == "openrouter"
    assert providers.get(None) is providers.get("openrouter")
    with pytest.raises(ConfigurationError) as info:
        providers.get("anthropic")
    assert str(info.value) == ("Unknown LLM provider 'anthropic'. "
                               "Known providers: ['openrouter', 'openai', 'localai', 'nokey']")


def test_openrouter_gets_attribution_headers_and_usage_accounting(mock, http):
    providers = build_providers(Config.from_env(ENV), http)
    mock.post("https://router.example.test/api/v1/chat/completions", json=CHAT_OK, match=[matchers.header_matcher(
        {"Authorization": "Bearer sk-or-reg-1111", "HTTP-Referer": "https://app.example.test",
         "X-Title": "Example App"})])
    chat(providers.get("openrouter"))
    assert json.loads(mock.calls[-1].request.body)["usage"] == {"include": True}


def test_openai_and_extra_providers_use_their_own_urls_and_keys(mock, http):
    providers = build_providers(Config.from_env(ENV), http)
    mock.post("https://openai.example.test/v1/chat/completions", json=CHAT_OK,
              match=[matchers.header_matcher({"Authorization": "Bearer sk-oa-reg-2222"})])
    mock.post("https://localai.example.test/v1/chat/completions", json=CHAT_OK,
              match=[matchers.header_matcher({"Authorization": "Bearer sk-local-3333"})])
    chat(providers.get("openai"))
    chat(providers.get("localai"))
    for call in mock.calls:
        body = json.loads(call.request.body)
        assert "usage" not in body and "HTTP-Referer" not in call.request.headers


def test_missing_keys_fail_at_call_time_naming_the_variable(http):
    providers = build_providers(Config.from_env({"LLM_PROVIDER_NOKEY_BASE_URL": "https://nokey.example.test"}),
                                http)
    with pytest.raises(MissingCredentialError, match="^OPENROUTER_API_KEY is not set: LLM provider 'openrouter'"):
        chat(providers.get(None))
    with pytest.raises(MissingCredentialError, match="^LLM_PROVIDER_NOKEY_API_KEY is not set"):
        chat(providers.get("nokey"))


def test_default_provider_must_exist(http):
    with pytest.raises(ConfigurationError, match="Default LLM provider 'mistral' is not configured"):
        build_providers(Config.from_env({"LLM_DEFAULT_PROVIDER": "mistral"}), http)
    providers = build_providers(Config.from_env({**ENV, "LLM_DEFAULT_PROVIDER": "localai"}), http)
    assert providers.get(None).name == "localai"


def test_provider_registry_needs_its_default_among_the_providers():
    with pytest.raises(ConfigurationError, match="Known providers: \\[\\]"):
        ProviderRegistryImpl([], default="openrouter")


def test_an_extra_provider_named_like_a_builtin_replaces_it(mock, http):
    env = {"LLM_PROVIDER_OPENAI_BASE_URL": "https://proxy.example.test/v1", "LLM_PROVIDER_OPENAI_API_KEY": "sk-px-77"}
    providers = build_providers(Config.from_env(env), http)
    assert providers.names() == ["openrouter", "openai"]
    mock.post("https://proxy.example.test/v1/chat/completions", json=CHAT_OK,
              match=[matchers.header_matcher({"Authorization": "Bearer sk-px-77"})])
    assert chat(providers.get("openai")).content == "hi"


def test_build_http_client_is_exported_here_too():
    client = build_http_client(Config.from_env({}))
    try:
        assert client.pool_size == 10 and client.allow_private_networks is False
    finally:
        client.close()
