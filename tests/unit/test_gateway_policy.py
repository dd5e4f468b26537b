"""What an agent may ask of the gateway: only its account's aliases, only allow-listed request fields, no
provider-side tools, fetched URLs or beta headers unless the alias enables them, bodies up to a size cap, and a
reservation that covers the worst case of what is sent. Each test drives the real gateway against the fake
provider and checks what the provider RECEIVED: nothing refused may reach it."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from sica.gateway.accounts import AccountTree
from sica.gateway.ledger import Ledger

PROVIDER_KEY = "fake-provider-key-policy-0123456789abcdef"
TINY_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

CONFIG = """
[models.compat]
provider = "openai_compatible"
model = "compat-model"
base_url = "{base}/v1"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}
context_window = 8192
max_output_tokens = 500

[models.gpt]
provider = "openai"
model = "gpt-4.1"
base_url = "{base}/v1"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}

[models.claude]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{base}"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0, cache_write = 4.0 }}
context_window = 200000

[models.claude_open]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{base}"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}
allow_server_tools = true
allow_fetched_urls = true
allow_beta_headers = true

[gateway]
max_request_bytes = 1048576
"""

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway(make_settings, serve, fake_upstream):
    environ = {"FAKE_KEY": PROVIDER_KEY}
    return serve(make_settings(CONFIG.format(base=fake_upstream.base_url), environ=environ), environ)


def post(gateway, token: str, path: str, body: object, **headers: str) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gateway.base_url + path, content=raw, timeout=30,
                      headers={"authorization": f"Bearer {token}", "content-type": "application/json", **headers})


def openai_error(reply: httpx.Response) -> dict:
    return reply.json()["error"]


def anthropic_error(reply: httpx.Response) -> dict:
    body = reply.json()
    assert body["type"] == "error"
    return body["error"]


# Aliases per account ------------------------------------------------------------------------------------------


def test_an_account_calls_only_its_aliases_and_a_refused_call_costs_nothing(gateway, fake_upstream):
    account = gateway.gateway.open_account("task", aliases=frozenset({"compat"}))
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(model="claude", max_tokens=50, messages=HI)
    assert caught.value.status_code == 403
    assert "'claude'" in caught.value.message and "compat" in caught.value.message
    assert fake_upstream.received == []
    assert list(gateway.gateway.ledger.calls(account.id)) == []
    assert gateway.gateway.account(account.id).spent_nano == 0
    allowed = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=account.token, max_retries=0)
    assert allowed.chat.completions.create(model="compat", messages=HI).choices[0].message.content == "fake answer"


def test_a_child_account_inherits_its_parents_aliases_and_cannot_widen_them(gateway, fake_upstream):
    parent = gateway.gateway.open_account("eval", aliases=frozenset({"compat"}))
    child = gateway.gateway.open_account("problem", parent=parent.id)
    reply = post(gateway, child.token, "/v1/messages", {"model": "claude", "max_tokens": 10, "messages": HI},
                 **{"anthropic-version": "2023-06-01"})
    assert reply.status_code == 403 and anthropic_error(reply)["type"] == "permission_error"
    with pytest.raises(ValueError, match="claude"):
        gateway.gateway.open_account("wider", parent=parent.id, aliases=frozenset({"compat", "claude"}))
    with pytest.raises(ValueError, match="nope"):
        gateway.gateway.open_account("unknown", aliases=frozenset({"nope"}))
    assert fake_upstream.received == []


def test_the_model_list_shows_only_the_accounts_aliases(gateway):
    token = gateway.gateway.open_account("task", aliases=frozenset({"compat", "claude"})).token
    listed = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=token, max_retries=0).models.list()
    assert [m.id for m in listed.data] == ["compat", "claude"]
    anthropic_list = anthropic.Anthropic(base_url=gateway.base_url, api_key=token, max_retries=0).models.list()
    assert [m.id for m in anthropic_list.data] == ["compat", "claude"]


def test_an_unknown_alias_names_only_the_accounts_aliases(gateway):
    token = gateway.gateway.open_account("task", aliases=frozenset({"compat"})).token
    reply = post(gateway, token, "/v1/chat/completions", {"model": "nope", "messages": HI})
    assert reply.status_code == 403
    assert "claude" not in openai_error(reply)["message"] and "compat" in openai_error(reply)["message"]


def test_aliases_survive_a_reload_of_the_ledger(make_settings, serve, fake_upstream, tmp_path):
    environ = {"FAKE_KEY": PROVIDER_KEY}
    settings = make_settings(CONFIG.format(base=fake_upstream.base_url), environ=environ)
    first = serve(settings, environ, ledger=tmp_path / "shared.sqlite")
    account = first.gateway.open_account("task", aliases=frozenset({"compat"}), token="sica-kept-token")
    second = serve(settings, environ, ledger=tmp_path / "shared.sqlite")
    reply = post(second, account.token, "/v1/chat/completions", {"model": "gpt", "messages": HI})
    assert reply.status_code == 403


# Request fields -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, named", [
    ({"n": 128}, "n"),
    ({"best_of": 8}, "best_of"),
    ({"n_predict": 100000}, "n_predict"),
    ({"logprobs": True, "top_logprobs": 20}, "logprobs"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"service_tier": "priority"}, "service_tier"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"tools": [{"type": "web_search_preview"}]}, "web_search_preview"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}]}]}, "URL"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}, "file_id"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
])
def test_openai_requests_outside_the_allow_list_are_refused_before_the_provider(gateway, fake_upstream, extra,
                                                                               named):
    account = gateway.gateway.open_account("task")
    reply = post(gateway, account.token, "/v1/chat/completions", {"model": "compat", "messages": HI} | extra)
    assert reply.status_code == 400, reply.text
    assert named in openai_error(reply)["message"]
    assert fake_upstream.received == []
    assert list(gateway.gateway.ledger.calls(account.id)) == []


@pytest.mark.parametrize("extra, named", [
    ({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 99}]}, "web_search_20250305"),
    ({"tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]}, "web_fetch_20250910"),
    ({"mcp_servers": [{"type": "url", "url": "https://example.com/sse", "name": "x"}]}, "mcp_servers"),
    ({"container": "c1"}, "container"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]}, "URL"),
    ({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}]}, "URL"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}]}]}]}, "URL"),
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}, "ttl"),
])
def test_anthropic_requests_outside_the_allow_list_are_refused_before_the_provider(gateway, fake_upstream, extra,
                                                                                  named):
    account = gateway.gateway.open_account("task")
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    body = {"model": "claude", "max_tokens": 50, "messages": HI} | extra
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**{k: v for k, v in body.items() if k in ("model", "max_tokens", "messages", "tools")},
                               extra_body={k: v for k, v in body.items()
                                           if k not in ("model", "max_tokens", "messages", "tools")})
    assert named in caught.value.message
    assert fake_upstream.received == []


def test_a_beta_header_is_refused_and_other_client_headers_never_reach_the_provider(gateway, fake_upstream):
    account = gateway.gateway.open_account("task")
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude", max_tokens=50, messages=HI,
                               extra_headers={"anthropic-beta": "web-fetch-2025-09-10"})
    assert "anthropic-beta" in caught.value.message
    assert fake_upstream.received == []
    client.messages.create(model="claude", max_tokens=50, messages=HI,
                           extra_headers={"openai-organization": "org-x", "x-forwarded-for": "10.0.0.1"})
    (received,) = fake_upstream.received
    assert "openai-organization" not in received.headers and "x-forwarded-for" not in received.headers
    assert received.headers["anthropic-version"] == client.default_headers["anthropic-version"]


def test_an_alias_that_enables_them_passes_server_tools_urls_and_betas(gateway, fake_upstream):
    account = gateway.gateway.open_account("task")
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    client.messages.create(model="claude_open", max_tokens=50,
                           messages=[{"role": "user", "content": [image, {"type": "text", "text": "hi"}]}],
                           tools=[{"type": "web_search_20250305", "name": "web_search"}],
                           extra_headers={"anthropic-beta": "web-fetch-2025-09-10"})
    (received,) = fake_upstream.received
    assert received.body["tools"][0]["type"] == "web_search_20250305"
    assert received.headers["anthropic-beta"] == "web-fetch-2025-09-10"


def test_inline_images_and_function_tools_pass(gateway, fake_upstream):
    account = gateway.gateway.open_account("task")
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=account.token, max_retries=0)
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"}}
    tool = {"type": "function", "function": {"name": "view", "parameters": {"type": "object"}}}
    client.chat.completions.create(model="compat", n=1, tools=[tool], tool_choice="auto",
                                   messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}])
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    inline = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TINY_PNG}}
    claude.messages.create(model="claude", max_tokens=50, tools=[{"name": "view", "input_schema": {"type": "object"}}],
                           messages=[{"role": "user", "content": [inline, {"type": "text", "text": "hi"}]}])
    assert [r.path for r in fake_upstream.received] == ["/v1/chat/completions", "/v1/messages"]


# Body size ------------------------------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_413_in_each_sdks_shape(gateway, fake_upstream):
    token = gateway.gateway.open_account("task").token
    big = {"model": "compat", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    reply = post(gateway, token, "/v1/chat/completions", big)
    assert reply.status_code == 413 and "1048576" in openai_error(reply)["message"]
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key=token, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="claude", max_tokens=10, messages=[{"role": "user", "content": "x" * 1_100_000}])
    assert caught.value.status_code == 413 and caught.value.body["error"]["type"] == "request_too_large"
    assert fake_upstream.received == []


def test_a_streamed_10_mb_body_is_refused_without_holding_it(gateway, fake_upstream):
    """No Content-Length (chunked): the gateway counts while it reads and stops at the cap."""
    token = gateway.gateway.open_account("task").token

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "compat", "messages": [{"role": "user", "content": "'
        for _ in range(160):
            yield b"x" * 65536
        yield b'"}]}'

    tracemalloc.start()
    try:
        reply = httpx.post(gateway.base_url + "/v1/chat/completions", content=chunks(), timeout=60,
                           headers={"authorization": f"Bearer {token}"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reply.status_code == 413
    assert peak < 4 * 1048576, f"the gateway held {peak} bytes"
    assert fake_upstream.received == []


# Worst-case reservations ----------------------------------------------------------------------------------------


def test_both_output_caps_become_one_clamped_cap_the_upstream_reads(gateway, fake_upstream):
    token = gateway.gateway.open_account("task").token
    post(gateway, token, "/v1/chat/completions",
         {"model": "compat", "messages": HI, "max_tokens": 10, "max_completion_tokens": 100000})
    post(gateway, token, "/v1/chat/completions",
         {"model": "gpt", "messages": HI, "max_tokens": 100000, "max_completion_tokens": 10})
    post(gateway, token, "/v1/chat/completions", {"model": "compat", "messages": HI})
    compat, gpt, missing = (r.body for r in fake_upstream.received)
    assert (compat["max_tokens"], "max_completion_tokens" in compat) == (10, False)
    assert (gpt["max_completion_tokens"], "max_tokens" in gpt) == (10, False)
    assert missing["max_tokens"] == 500


def test_a_thinking_budget_stays_inside_the_clamped_output_cap(gateway, fake_upstream):
    body = {"model": "claude", "max_tokens": 64000, "messages": HI,
            "thinking": {"type": "enabled", "budget_tokens": 60000}}
    raw = json.dumps(body).encode()
    # Room for the body's bytes (plus the tool-free overhead of none) and 2000 output tokens.
    account = gateway.gateway.open_account("tight", limit_usd=(len(raw) * 4000 + 2000 * 2000) / 1e9)
    reply = post(gateway, account.token, "/v1/messages", raw, **{"anthropic-version": "2023-06-01"})
    assert reply.status_code == 200, reply.text
    (received,) = fake_upstream.received
    assert received.body["max_tokens"] == 2000
    assert received.body["thinking"]["budget_tokens"] < 2000


def test_the_reservation_prices_input_as_cache_writes_when_they_cost_more(gateway, fake_upstream):
    account = gateway.gateway.open_account("task")
    raw = json.dumps({"model": "claude", "max_tokens": 10, "messages": HI}).encode()
    post(gateway, account.token, "/v1/messages", raw, **{"anthropic-version": "2023-06-01"})
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert row["reserved_nano"] == len(raw) * 4000 + 10 * 2000


def test_tools_and_images_are_reserved_beyond_their_bytes(gateway, fake_upstream):
    """A tool adds the provider's tool-use prompt, and a picture's tokens are not bounded by its bytes (a
    compressed 2048×2048 image is a few hundred bytes): the reservation allows for both."""
    account = gateway.gateway.open_account("task")
    tool = {"type": "function", "function": {"name": "v", "parameters": {"type": "object"}}}
    with_tool = json.dumps({"model": "compat", "max_tokens": 10, "messages": HI, "tools": [tool]}).encode()
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"}}
    with_image = json.dumps({"model": "compat", "max_tokens": 10,
                             "messages": [{"role": "user", "content": [image]}]}).encode()
    post(gateway, account.token, "/v1/chat/completions", with_tool)
    post(gateway, account.token, "/v1/chat/completions", with_image)
    tool_row, image_row = gateway.gateway.ledger.calls(account.id)
    assert tool_row["reserved_tokens"] >= len(with_tool) + 1000 + 10
    assert image_row["reserved_tokens"] >= len(with_image) + 8192 + 10


def test_an_older_ledger_gets_the_aliases_column(tmp_path):
    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE accounts (id TEXT PRIMARY KEY, parent_id TEXT, name TEXT NOT NULL, token_sha256 TEXT "
                "UNIQUE, limit_nano INTEGER, limit_tokens INTEGER, created_at REAL NOT NULL)")
    old.execute("INSERT INTO accounts VALUES ('a', NULL, 'kept', NULL, NULL, NULL, 0)")
    old.commit()
    old.close()
    ledger = Ledger(tmp_path / "old.sqlite")
    try:
        tree = AccountTree()
        ledger.load_into(tree)
        assert tree.get("a").aliases is None
    finally:
        ledger.close()


def test_an_absurd_output_cap_is_refused_and_holds_no_reservation(gateway, fake_upstream):
    """max_tokens = 10**30 on an account without limits overflowed the ledger's integers after the reservation
    was made: the reservation was never released, and the run's account above it was blocked for good."""
    run = gateway.gateway.open_account("run")
    account = gateway.gateway.open_account("task", parent=run.id)
    reply = post(gateway, account.token, "/v1/chat/completions", {"model": "compat", "messages": HI,
                                                                  "max_tokens": 10**30})
    assert reply.status_code == 400 and "max_tokens" in openai_error(reply)["message"]
    assert gateway.gateway.account(run.id).reserved_nano == 0
    assert fake_upstream.received == []
