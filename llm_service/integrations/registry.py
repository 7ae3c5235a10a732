"""Registries of external services and LLM providers, and the builders that assemble them from Config.

Everything is built once per process around the one :class:`HttpClient`; the engine only sees the
``ServiceRegistry`` / ``ProviderRegistry`` interfaces from ``engine.ports``.
"""
from __future__ import annotations

from typing import Iterable, Optional

from ..config import Config
from ..engine.errors import ConfigurationError
from ..engine.ports import ChatProvider, ExternalService
from ..http.client import HttpClient, build_http_client
from .google_places import GooglePlacesService
from .llm import OpenAICompatibleProvider
from .weatherapi import WeatherAPIService

__all__ = ["ServiceRegistryImpl", "ProviderRegistryImpl", "build_services", "build_providers", "build_http_client"]


def _by_name(items: Iterable, kind: str) -> dict:
    found: dict = {}
    for item in items:
        if item.name in found:
            raise ConfigurationError(f"{kind} '{item.name}' is registered twice")
        found[item.name] = item
    return found


class ServiceRegistryImpl:
    def __init__(self, services: Iterable[ExternalService]) -> None:
        self._services: dict[str, ExternalService] = _by_name(services, "Service")

    def get(self, name: str) -> ExternalService:
        service = self._services.get(name)
        if service is None:
            raise ConfigurationError(f"Service '{name}' not found. Available services: {self.names()}",
                                     service=name)
        return service

    def names(self) -> list[str]:
        return list(self._services)


class ProviderRegistryImpl:
    def __init__(self, providers: Iterable[ChatProvider], default: str) -> None:
        self._providers: dict[str, ChatProvider] = _by_name(providers, "LLM provider")
        if default not in self._providers:
            raise ConfigurationError(f"Default LLM provider '{default}' is not configured. "
                                     f"Known providers: {self.names()}")
        self.default = default

    def get(self, name: Optional[str]) -> ChatProvider:
        provider = self._providers.get(name or self.default)
        if provider is None:
            raise ConfigurationError(f"Unknown LLM provider '{name}'. Known providers: {self.names()}",
                                     service=name)
        return provider

    def names(self) -> list[str]:
        return list(self._providers)


def build_services(config: Config, http: HttpClient) -> ServiceRegistryImpl:
    return ServiceRegistryImpl([
        WeatherAPIService(http, api_key=config.weatherapi_api_key, base_url=config.weatherapi_base_url),
        GooglePlacesService(http, api_key=config.google_places_api_key, base_url=config.google_places_base_url),
    ])


def build_providers(config: Config, http: HttpClient) -> ProviderRegistryImpl:
    """OpenRouter and OpenAI always (a missing key fails the call that needs it, naming the variable), plus every
    ``LLM_PROVIDER_<NAME>_BASE_URL`` endpoint; an extra provider with a built-in's name replaces it."""
    providers: dict[str, OpenAICompatibleProvider] = {
        "openrouter": OpenAICompatibleProvider(
            "openrouter", http, base_url=config.openrouter_base_url, api_key=config.openrouter_api_key,
            api_key_env="OPENROUTER_API_KEY", display_name="OpenRouter", usage_accounting=True,
            extra_headers={"HTTP-Referer": config.llm_http_referer, "X-Title": config.llm_app_title}),
        "openai": OpenAICompatibleProvider(
            "openai", http, base_url=config.openai_base_url, api_key=config.openai_api_key,
            api_key_env="OPENAI_API_KEY", display_name="OpenAI"),
    }
    for name, (base_url, api_key) in config.llm_extra_providers.items():
        providers[name] = OpenAICompatibleProvider(name, http, base_url=base_url, api_key=api_key,
                                                   api_key_env=f"LLM_PROVIDER_{name.upper()}_API_KEY")
    return ProviderRegistryImpl(providers.values(), default=config.llm_default_provider)
