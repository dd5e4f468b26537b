"""Pricing: genai-prices with cache tokens, per-alias overrides, free models, and unpriced models refused."""

from __future__ import annotations

import pytest

from sica.config import ConfigError, ModelAlias, PricePerMillion
from sica.gateway.pricing import FixedPricer, max_affordable_output, pricer_for
from sica.gateway.usage import TokenUsage


def test_genai_prices_include_cache_reads_and_writes():
    pricer = pricer_for("claude", ModelAlias(provider="anthropic", model="claude-sonnet-4-5"))
    usage = TokenUsage(input=1000, output=100, cache_read=500, cache_write=200)
    # $3/M uncached input (300), $0.30/M cache read (500), $3.75/M cache write (200), $15/M output (100).
    assert pricer.cost(usage) == 300 * 3_000 + 500 * 300 + 200 * 3_750 + 100 * 15_000


def test_openai_cached_tokens_are_cheaper():
    pricer = pricer_for("gpt", ModelAlias(provider="openai", model="gpt-4o"))
    assert pricer.cost(TokenUsage(input=1000, cache_read=1000)) < pricer.cost(TokenUsage(input=1000))


def test_override_and_free_and_local_and_scripted():
    fixed = pricer_for("x", ModelAlias(provider="openai_compatible", model="anything", base_url="http://127.0.0.1:1/v1",
                                       price=PricePerMillion(input=0.2, output=0.8, cache_read=0.02)))
    assert fixed.cost(TokenUsage(input=1_000_000, output=1_000_000, cache_read=500_000)) == 910_000_000  # 0.5M·0.2 + 0.5M·0.02 + 1M·0.8
    free = pricer_for("v", ModelAlias(provider="openai_compatible", model="m", base_url="http://127.0.0.1:1/v1",
                                      price="free"))
    assert free.cost(TokenUsage(input=10**6, output=10**6)) == 0
    assert pricer_for("l", ModelAlias(provider="local", model="1.5b")).cost(TokenUsage(input=5, output=5)) == 0
    scripted = ModelAlias(provider="scripted", model="s", script="x.jsonl")
    assert pricer_for("s", scripted).cost(TokenUsage(input=5, output=5)) == 0


def test_unpriced_model_is_a_start_up_error_naming_the_fix():
    alias = ModelAlias(provider="openai_compatible", model="my-own-finetune", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match=r"\[models.mine\]: no known price for model 'my-own-finetune'.*price = "):
        pricer_for("mine", alias)


@pytest.mark.parametrize("budget", [0, 999, 1_000, 123_456_789, 10**12])
def test_max_affordable_output_is_the_largest_that_fits(budget):
    pricer = FixedPricer(PricePerMillion(input=3.0, output=15.0))
    tokens = max_affordable_output(pricer, 10, budget)
    if tokens:
        assert pricer.cost(TokenUsage(input=10, output=tokens)) <= budget
    assert pricer.cost(TokenUsage(input=10, output=tokens + 1)) > budget
