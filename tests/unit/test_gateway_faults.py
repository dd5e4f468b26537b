"""The gateway against a fault-injecting fake provider: retries, give-up, streams, key custody."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

PROVIDER_KEY = "sk-test-provider-key-0123456789abcdef"

CONFIG = """
[models.compat]
provider = "openai_compatible"
model = "fake-model"
base_url = "{base}/v1"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}
timeout_s = 0.5

[models.claude]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{base}"
api_key_env = "FAKE_KEY"

[gateway.retry]
max_attempts = 4
initial_backoff_s = 0.01
max_backoff_s = 0.05
deadline_s = 5
"""

ASK = {"model": "compat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway(make_settings, serve, fake_upstream):
    environ = {"FAKE_KEY": PROVIDER_KEY}
    return serve(make_settings(CONFIG.format(base=fake_upstream.base_url), environ=environ), environ)


@pytest.fixture
def account(gateway):
    return gateway.gateway.open_account("faults")


@pytest.fixture
def client(gateway, account):
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=account.token, max_retries=0)


def only_row(gateway, account):
    (row,) = gateway.gateway.ledger.calls(account.id)
    return row


def test_429_retry_after_is_honoured_and_counted_as_queue_time(gateway, account, client, fake_upstream):
    fake_upstream.then("status", status=429, retry_after="1")
    started = time.monotonic()
    assert client.chat.completions.create(**ASK).choices[0].message.content == "fake answer"
    assert time.monotonic() - started >= 1.0
    first, second = fake_upstream.received
    assert second.at - first.at >= 1.0
    row = only_row(gateway, account)
    assert (row["status"], row["attempts"]) == ("ok", 2)
    assert row["queued_s"] >= 1.0 and row["upstream_s"] < 1.0


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 500}, {"kind": "status", "status": 502},
                                   {"kind": "status", "status": 529}, {"kind": "hang", "seconds": 5},
                                   {"kind": "malformed"}])
def test_transient_faults_are_retried(gateway, account, client, fake_upstream, fault):
    fake_upstream.then(**fault).then(**fault)
    assert client.chat.completions.create(**ASK).choices[0].message.content == "fake answer"
    row = only_row(gateway, account)
    assert (row["status"], row["attempts"], row["input_tokens"], row["output_tokens"]) == ("ok", 3, 11, 7)


def test_persistent_failure_becomes_503_upstream_unavailable_and_costs_nothing(gateway, account, client,
                                                                                  fake_upstream):
    for _ in range(4):
        fake_upstream.then("status", status=503)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(**ASK)
    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "upstream_unavailable"
    assert "after 4 attempts" in caught.value.body["message"]
    row = only_row(gateway, account)
    assert (row["status"], row["error_class"], row["attempts"], row["cost_nano"]) == ("error", "http_503", 4, 0)
    assert gateway.gateway.account(account.id).reserved_nano == 0


def test_retry_after_beyond_the_deadline_gives_up_at_once(gateway, account, client, fake_upstream):
    fake_upstream.then("status", status=429, retry_after="60")
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**ASK)
    assert time.monotonic() - started < 3
    assert len(fake_upstream.received) == 1


def test_client_errors_pass_through_unretried(gateway, account, client, fake_upstream):
    fake_upstream.then("status", status=400)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ASK)
    assert caught.value.body["message"] == "fake 400"
    assert only_row(gateway, account)["attempts"] == 1


def test_rejected_provider_key_is_upstream_unavailable_naming_the_alias(gateway, account, client, fake_upstream):
    fake_upstream.then("status", status=401)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(**ASK)
    assert "alias 'compat'" in caught.value.body["message"] and "credentials" in caught.value.body["message"]


def test_provider_key_goes_upstream_but_never_back_or_into_the_ledger(gateway, account, client, fake_upstream):
    fake_upstream.then("echo_auth")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ASK)
    assert fake_upstream.received[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert PROVIDER_KEY not in caught.value.response.text
    assert "[redacted]" in caught.value.response.text
    gateway.gateway.ledger._db.execute("PRAGMA wal_checkpoint(FULL)")
    assert PROVIDER_KEY.encode() not in gateway.gateway.ledger.path.read_bytes()


def test_anthropic_upstream_gets_its_key_and_version_not_the_account_token(gateway, account, fake_upstream):
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=account.token, max_retries=0)
    reply = client.messages.create(model="claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "fake answer"
    headers = fake_upstream.received[0].headers
    assert headers["x-api-key"] == PROVIDER_KEY and headers["anthropic-version"]
    assert account.token not in str(headers)
    assert fake_upstream.received[0].body["model"] == "claude-sonnet-4-5"
    row = only_row(gateway, account)
    # genai-prices: claude-sonnet-4-5 at $3/M input and $15/M output.
    assert row["cost_nano"] == 11 * 3_000 + 7 * 15_000


def test_streams_ask_for_usage_and_are_metered(gateway, account, client, fake_upstream):
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(**ASK, stream=True) if c.choices)
    assert text == "fake streamed answer"
    assert fake_upstream.received[0].body["stream_options"] == {"include_usage": True}
    row = only_row(gateway, account)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 11, 7)


def test_truncated_stream_is_told_to_the_client_and_charged_its_worst_case(gateway, account, client,
                                                                            fake_upstream):
    fake_upstream.then("truncated")
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(**ASK, stream=True):
            pass
    assert "ended early" in str(caught.value)
    row = only_row(gateway, account)
    assert row["status"] == "truncated" and row["cost_nano"] == row["reserved_nano"] > 0


@pytest.mark.parametrize("alias", ["compat", "claude"])
def test_stream_is_metered_to_its_end_after_the_client_disconnects(gateway, account, fake_upstream, alias):
    fake_upstream.then("slow_stream", seconds=0.3)
    path = "/v1/messages" if alias == "claude" else "/v1/chat/completions"
    body = {"model": alias, "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gateway.base_url, headers={"x-api-key": account.token}) as http:
        with http.stream("POST", path, json=body) as response:
            next(response.iter_raw())
    deadline = time.monotonic() + 10
    while only_row(gateway, account)["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    row = only_row(gateway, account)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 11, 7)
    assert row["upstream_s"] >= 1.0
