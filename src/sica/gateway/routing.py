"""From configured aliases to routes: each alias's upstream, pricer and limiter, and the secrets to redact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from sica.config import ConfigError, ModelAlias, Settings
from sica.gateway.cassette import CassetteUpstream
from sica.gateway.limits import UpstreamLimiter
from sica.gateway.pricing import Pricer, pricer_for
from sica.gateway.scripted import ScriptedUpstream, load_script
from sica.gateway.upstreams import HttpUpstream, Upstream

DEFAULT_BASE_URLS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
DEFAULT_KEY_ENVS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class Route:
    """Everything the gateway needs to serve one alias."""

    name: str
    alias: ModelAlias
    upstream: Upstream
    pricer: Pricer
    limiter: UpstreamLimiter


class Redactor:
    """Removes provider keys from any text that leaves the gateway or enters the ledger."""

    def __init__(self, secrets: set[str]) -> None:
        self._secrets = sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def bytes(self, data: bytes) -> bytes:
        return self(data.decode(errors="replace")).encode() if self._secrets else data


def provider_key(name: str, alias: ModelAlias, environ: Mapping[str, str]) -> str | None:
    """The alias's provider key, from the config or the environment; hosted providers must have one."""
    if alias.api_key is not None:
        return alias.api_key.get_secret_value()
    env_name = alias.api_key_env or DEFAULT_KEY_ENVS.get(alias.provider)
    key = environ.get(env_name) if env_name else None
    if not key and alias.provider in DEFAULT_KEY_ENVS:
        raise ConfigError(
            f"[models.{name}]: no API key: set the environment variable {env_name} "
            f'(or api_key_env = "NAME" in the alias)'
        )
    return key or None


def build_routes(
    settings: Settings, environ: Mapping[str, str], session: aiohttp.ClientSession, local_base_urls: Mapping[str, str]
) -> tuple[dict[str, Route], Redactor]:
    """Routes for every alias. `local_base_urls` maps local model names to the servers started for them."""
    routes: dict[str, Route] = {}
    secrets: set[str] = set()
    cassette = settings.gateway.cassette
    for name, alias in settings.models.items():
        upstream: Upstream
        if alias.provider == "scripted":
            assert alias.script is not None
            upstream = ScriptedUpstream(
                load_script(alias.script), wire=alias.wire_format, model=alias.model, script=alias.script
            )
        else:
            key = provider_key(name, alias, environ) if alias.provider != "local" else None
            if key:
                secrets.add(key)
            base_url = (
                local_base_urls[alias.model]
                if alias.provider == "local"
                else (alias.base_url or DEFAULT_BASE_URLS[alias.provider])
            )
            timeout = aiohttp.ClientTimeout(sock_connect=settings.gateway.connect_timeout_s, sock_read=alias.timeout_s)
            upstream = HttpUpstream(
                wire=alias.wire_format, base_url=base_url, api_key=key, session=session, timeout=timeout
            )
        if cassette.mode != "off":
            assert cassette.path is not None
            upstream = CassetteUpstream(upstream, cassette.path, cassette.mode, alias=name)
        routes[name] = Route(
            name,
            alias,
            upstream,
            pricer_for(name, alias),
            UpstreamLimiter(alias.max_concurrent, alias.requests_per_minute, alias.tokens_per_minute),
        )
    return routes, Redactor(secrets)
