"""Record and replay through the real gateway."""

from __future__ import annotations

import openai
import pytest

CONFIG = """
[models.compat]
provider = "openai_compatible"
model = "fake-model"
base_url = "{base}/v1"
price = "free"

[gateway.cassette]
mode = "{mode}"
path = "cassette.jsonl"
"""
ASK = {"model": "compat", "messages": [{"role": "user", "content": "record me"}]}


def test_recorded_exchanges_replay_without_the_upstream(make_settings, serve, fake_upstream, tmp_path):
    recording = serve(make_settings(CONFIG.format(base=fake_upstream.base_url, mode="record")),
                      ledger=tmp_path / "a.sqlite")
    client = openai.OpenAI(base_url=recording.base_url + "/v1", api_key=recording.gateway.open_account("r").token,
                           max_retries=0)
    plain = client.chat.completions.create(**ASK)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**ASK, stream=True)
                       if c.choices)
    assert len(fake_upstream.received) == 2

    replaying = serve(make_settings(CONFIG.format(base="http://127.0.0.1:9", mode="replay")),
                      ledger=tmp_path / "b.sqlite")
    account = replaying.gateway.open_account("p")
    client = openai.OpenAI(base_url=replaying.base_url + "/v1", api_key=account.token, max_retries=0)
    assert client.chat.completions.create(**ASK, max_tokens=5).choices[0].message.content == \
        plain.choices[0].message.content
    assert "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**ASK, stream=True)
                   if c.choices) == streamed
    assert len(fake_upstream.received) == 2
    assert [row["output_tokens"] for row in replaying.gateway.ledger.calls(account.id)] == [7, 7]

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="compat", messages=[{"role": "user", "content": "never recorded"}])
    assert "has no recorded response for this request" in caught.value.body["message"]
