"""Upstream integrations: WeatherAPI, Google Places and OpenAI-compatible LLM providers, plus their registries."""
from .google_places import GooglePlacesService
from .llm import OpenAICompatibleProvider
from .registry import (
                       ProviderRegistryImpl,
                       ServiceRegistryImpl,
                       build_http_client,
                       build_providers,
                       build_services,
)
from .weatherapi import WeatherAPIService

__all__ = [
    "GooglePlacesService", "OpenAICompatibleProvider", "ProviderRegistryImpl", "ServiceRegistryImpl",
    "WeatherAPIService", "build_http_client", "build_providers", "build_services",
]
