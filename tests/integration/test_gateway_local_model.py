"""The gateway in front of the real 0.5B model on llama.cpp: constrained and streamed completions, metered."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.support.local_model import TEST_MODEL_NAME

pytestmark = pytest.mark.slow

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "lines": {"type": "integer"}},
          "required": ["name", "lines"], "additionalProperties": False}


@pytest.fixture
def gateway(make_settings, serve, local_model_server):
    """A gateway whose alias points at the session's shared model server."""
    return serve(make_settings(f"""
        [models.qwen]
        provider = "openai_compatible"
        model = "{local_model_server.options.alias}"
        base_url = "{local_model_server.base_url}"
        price = "free"
    """))


@pytest.fixture
def client_and_account(gateway):
    account = gateway.gateway.open_account("integration", limit_tokens=5_000)
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=account.token, max_retries=0), account


def test_json_schema_constrained_completion_is_valid_and_metered(gateway, client_and_account):
    client, account = client_and_account
    reply = client.chat.completions.create(
        model="qwen", max_tokens=60, temperature=0,
        messages=[{"role": "user", "content": "Describe a Python file called main.py with 12 lines as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "file", "schema": SCHEMA}})
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"name", "lines"} and isinstance(data["lines"], int)
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert row["status"] == "ok" and row["input_tokens"] > 10 and 0 < row["output_tokens"] <= 60
    assert row["cost_nano"] == 0 and row["upstream_s"] > 0
    assert gateway.gateway.account(account.id).spent_tokens == row["input_tokens"] + row["output_tokens"]


def test_streamed_completion_is_metered_from_the_final_chunk(gateway, client_and_account):
    client, account = client_and_account
    stream = client.chat.completions.create(model="qwen", max_tokens=16, temperature=0, stream=True,
                                            messages=[{"role": "user", "content": "Count from 1 to 20."}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "1" in text
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert (row["status"], row["stream"], row["output_tokens"]) == ("ok", 1, 16)
    assert row["input_tokens"] > 10


def test_token_budget_caps_the_real_model(gateway):
    raw = json.dumps({"model": "qwen", "temperature": 0, "max_tokens": 500,
                      "messages": [{"role": "user", "content": "Write a long story."}]}).encode()
    # Room for the request's bytes (the input's upper bound) and 40 output tokens.
    account = gateway.gateway.open_account("capped", limit_tokens=len(raw) + 40)
    headers = {"authorization": f"Bearer {account.token}", "content-type": "application/json"}
    reply = httpx.post(gateway.base_url + "/v1/chat/completions", content=raw, headers=headers, timeout=120).json()
    assert reply["usage"]["completion_tokens"] == 40 and reply["choices"][0]["finish_reason"] == "length"
    refused = httpx.post(gateway.base_url + "/v1/chat/completions", content=raw, headers=headers, timeout=120)
    assert refused.status_code == 402 and refused.json()["error"]["type"] == "budget_exceeded"


def test_harness_starts_and_stops_the_local_model_itself(make_settings, serve, local_model_05b_path,
                                                         local_model_cache_dir):
    running = serve(make_settings(f"""
        [models.local]
        provider = "local"
        model = "{TEST_MODEL_NAME}"

        [local]
        cache_dir = "{local_model_cache_dir}"
        n_parallel = 1
        n_ctx = 2048
    """))
    account = running.gateway.open_account("local")
    client = openai.OpenAI(base_url=running.base_url + "/v1", api_key=account.token, max_retries=0)
    reply = client.chat.completions.create(model="local", max_tokens=8,
                                           messages=[{"role": "user", "content": "Say hello."}])
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens <= 8
