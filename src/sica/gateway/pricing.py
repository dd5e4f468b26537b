"""Prices of calls, in integer nano-USD so sums are exact and identical on every replay.

Hosted models are priced by genai-prices (its bundled snapshot: no network); an alias may override with
`price = "free"` or its own per-million prices. Local models are free; scripted ones cost what their alias sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import genai_prices

from sica.config import ConfigError, ModelAlias, PricePerMillion
from sica.gateway.usage import TokenUsage

NANO_PER_USD = 1_000_000_000


def usd_to_nano(usd: float | Decimal) -> int:
    return math.ceil(Decimal(str(usd)) * NANO_PER_USD)


def nano_to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


class Pricer(Protocol):
    """Prices a call's usage in nano-USD; must not decrease when any count grows."""

    def cost(self, usage: TokenUsage) -> int: ...


class FreePricer:
    def cost(self, usage: TokenUsage) -> int:
        return 0


@dataclass(frozen=True)
class FixedPricer:
    """Per-million prices from the configuration; cache prices default to the input price."""

    price: PricePerMillion

    def cost(self, usage: TokenUsage) -> int:
        cache_read = self.price.input if self.price.cache_read is None else self.price.cache_read
        cache_write = self.price.input if self.price.cache_write is None else self.price.cache_write
        uncached = max(0, usage.input - usage.cache_read - usage.cache_write)
        micro_usd_total = (
            Decimal(str(self.price.input)) * uncached
            + Decimal(str(cache_read)) * usage.cache_read
            + Decimal(str(cache_write)) * usage.cache_write
            + Decimal(str(self.price.output)) * usage.output
        )
        return math.ceil(micro_usd_total * 1000)


@dataclass(frozen=True)
class GenaiPricer:
    """Prices from genai-prices' bundled data, including cache reads and writes and tiered prices."""

    model: str
    provider_id: str | None
    provider_api_url: str | None

    def cost(self, usage: TokenUsage) -> int:
        tokens = genai_prices.Usage(
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
        )
        # genai-prices takes a provider's id or its API's URL, not both (`pricer_for` gives at most one).
        calc = (
            genai_prices.calc_price(tokens, self.model, provider_id=self.provider_id)
            if self.provider_api_url is None
            else genai_prices.calc_price(tokens, self.model, provider_api_url=self.provider_api_url)
        )
        return usd_to_nano(calc.total_price)


_GENAI_PROVIDER = {"anthropic": "anthropic", "openai": "openai"}


@dataclass(frozen=True)
class WorstCaseInput:
    """A reservation's pricer: every input token at the dearer of the input and cache-write prices, since a
    request may mark its whole prompt for caching and writing the cache can cost more than reading the prompt."""

    pricer: Pricer

    def cost(self, usage: TokenUsage) -> int:
        written = TokenUsage(input=usage.input, output=usage.output, cache_write=usage.input)
        return max(self.pricer.cost(usage), self.pricer.cost(written))


def pricer_for(alias_name: str, alias: ModelAlias) -> Pricer:
    """The pricer of an alias; an unpriced hosted model is a configuration error, found at start-up."""
    if isinstance(alias.price, PricePerMillion):
        return FixedPricer(alias.price)
    if alias.price == "free" or alias.provider in ("local", "scripted"):
        return FreePricer()
    pricer = GenaiPricer(
        alias.model,
        _GENAI_PROVIDER.get(alias.provider),
        alias.base_url if alias.provider == "openai_compatible" else None,
    )
    try:
        pricer.cost(TokenUsage(input=1, output=1))
    except LookupError:
        raise ConfigError(
            f"[models.{alias_name}]: no known price for model '{alias.model}'; set price = \"free\" or "
            f"price = {{ input = …, output = … }} (USD per million tokens)"
        ) from None
    return pricer


def max_affordable_output(pricer: Pricer, input_tokens: int, budget_nano: int) -> int:
    """The most output tokens that, with `input_tokens` of input, cost at most `budget_nano`."""
    base = pricer.cost(TokenUsage(input=input_tokens))
    if base > budget_nano:
        return 0
    per_million = pricer.cost(TokenUsage(input=input_tokens, output=1_000_000)) - base
    if per_million <= 0:
        return 1 << 40
    tokens = (budget_nano - base) * 1_000_000 // per_million
    while tokens > 0 and pricer.cost(TokenUsage(input=input_tokens, output=tokens)) > budget_nano:
        tokens -= max(1, tokens // 1000)
    return tokens
