"""Budgets: worst-case reservation, clamping, 402s in both SDK shapes, trees, concurrency and restarts."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest

from sica.config import PricePerMillion
from sica.gateway.accounts import Account, AccountTree, BudgetExceeded
from sica.gateway.pricing import FixedPricer, usd_to_nano
from tests.support.config import scripted_config
from tests.support.gateway_thread import serve_in_thread

PRICER = FixedPricer(PricePerMillion(input=1.0, output=2.0))  # 1000 and 2000 nano-USD a token


def tree_with(*accounts: Account) -> AccountTree:
    tree = AccountTree()
    for account in accounts:
        tree.add(account, None)
    return tree


def test_output_is_clamped_to_what_the_tightest_ancestor_can_pay_for():
    tree = tree_with(Account("run", "run", None, limit_nano=1_000_000),
                     Account("problem", "problem", "run", limit_nano=10_000_000))
    reservation = tree.reserve("problem", PRICER, input_tokens=100, requested_output=4096, min_output=16)
    # (1,000,000 − 100·1000) / 2000 = 450 output tokens fit the run's limit.
    assert reservation.max_output == 450
    assert reservation.cost_nano == 100 * 1000 + 450 * 2000
    assert tree.get("run").reserved_nano == tree.get("problem").reserved_nano == reservation.cost_nano


def test_reservations_hold_budget_until_settled_with_real_usage():
    tree = tree_with(Account("a", "a", None, limit_nano=1_000_000))
    first = tree.reserve("a", PRICER, 100, 450, 16)
    with pytest.raises(BudgetExceeded) as caught:
        tree.reserve("a", PRICER, 100, 450, 16)
    assert caught.value.account.name == "a" and "reserved by calls in flight" in str(caught.value)
    tree.settle(first, cost_nano=300_000, tokens=250)
    assert (tree.get("a").spent_nano, tree.get("a").reserved_nano) == (300_000, 0)
    assert tree.reserve("a", PRICER, 100, 4096, 16).max_output == 300


def test_token_limits_clamp_and_refuse():
    tree = tree_with(Account("a", "a", None, limit_tokens=1000))
    assert tree.reserve("a", PRICER, 300, 4096, 16).max_output == 700
    with pytest.raises(BudgetExceeded) as caught:
        tree.reserve("a", PRICER, 300, 4096, 16)
    assert caught.value.unit == "tokens" and "tokens" in str(caught.value)


CONFIG = scripted_config({"fake": {}, "fake_claude": {"wire": "anthropic"}}, gateway={"min_output_tokens": 100})
SCRIPT = '{"content": "ok", "usage": {"input": 10, "output": 100}, "latency_s": 0.3}\n' * 40


@pytest.fixture
def gateway(make_settings, serve):
    return serve(make_settings(CONFIG, {"script.jsonl": SCRIPT}))


def test_402_in_openai_shape_names_spent_and_limit(gateway):
    account = gateway.gateway.open_account("tiny", limit_usd=0.0001)
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=account.token, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 402
    error = caught.value.body
    assert error["type"] == "budget_exceeded"
    assert (error["spent_usd"], error["limit_usd"], error["account"]) == (0.0, 0.0001, "tiny")


def test_402_in_anthropic_shape(gateway):
    account = gateway.gateway.open_account("tiny", limit_usd=0.0001)
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="fake_claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "budget_exceeded"
    assert caught.value.body["error"]["limit_usd"] == 0.0001


def test_upstream_sees_the_clamped_cap(gateway):
    # Room for the request's bytes as input plus 150 output tokens.
    body = {"model": "fake", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}]}
    raw = json.dumps(body).encode()
    account = gateway.gateway.open_account("clamped", limit_usd=(len(raw) * 1000 + 150 * 2000) / 1e9)
    reply = httpx.post(gateway.base_url + "/v1/chat/completions", content=raw,
                       headers={"authorization": f"Bearer {account.token}"})
    assert reply.status_code == 200
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert json.loads(row["request_body"])["max_tokens"] == 4096
    assert row["reserved_tokens"] == len(raw) + 150
    assert row["output_tokens"] == 100


def test_concurrent_calls_racing_a_limit_never_jointly_overshoot(gateway):
    worst = 400 * 1000 + 100 * 2000
    parent = gateway.gateway.open_account("run", limit_usd=5.5 * worst / 1e9)
    children = [gateway.gateway.open_account(f"p{i}", parent=parent.id) for i in range(4)]
    body = {"model": "fake", "max_tokens": 100, "messages": [{"role": "user", "content": "x" * 300}]}

    def call(i: int) -> int:
        token = children[i % 4].token
        return httpx.post(gateway.base_url + "/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {token}"}, timeout=30).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(call, range(20)))
    run = gateway.gateway.account(parent.id)
    assert run.reserved_nano == 0
    assert run.spent_nano <= run.limit_nano
    assert statuses.count(402) > 0 and statuses.count(200) >= 5
    assert set(statuses) == {200, 402}
    ledger_total = sum(row["cost_nano"] for row in gateway.gateway.ledger.calls())
    assert ledger_total == run.spent_nano


def test_spend_and_pending_calls_survive_a_restart(make_settings, serve, tmp_path):
    settings = make_settings(CONFIG, {"script.jsonl": SCRIPT})
    ledger = tmp_path / "restart.sqlite"
    with serve_in_thread(settings, ledger) as first:
        account = first.gateway.open_account("standalone", limit_usd=1.0, token="sica-fixed-token")
        httpx.post(first.base_url + "/v1/chat/completions", headers={"x-api-key": "sica-fixed-token"},
                   json={"model": "fake", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
        spent = first.gateway.account(account.id).spent_nano
        # A call in flight when the gateway dies: its row stays pending.
        orphan = first.gateway.ledger.begin_call(account.id, "fake", "scripted", "scripted", False, 123_456, 99, None)
        # Another gateway on the same ledger leaves the live one's pending rows alone.
        assert serve(settings, ledger=ledger).gateway.interrupted_on_start == 0
    second = serve(settings, ledger=ledger)
    assert second.gateway.interrupted_on_start == 1
    rows = {row["id"]: row for row in second.gateway.ledger.calls(account.id)}
    assert (rows[orphan]["status"], rows[orphan]["cost_nano"]) == ("interrupted", 123_456)
    reopened = second.gateway.open_account("standalone", limit_usd=2.0, token="sica-fixed-token")
    assert reopened.id == account.id
    state = second.gateway.account(account.id)
    assert (state.spent_nano, state.limit_nano) == (spent + 123_456, usd_to_nano(2.0))
