"""The gateway's TCP side, which remote workers' sandboxes reach (through the worker's relay, `gateway.relay`):
the same per-attempt bearer tokens and alias lists as on its unix socket, checked by the gateway itself; a
missing or wrong token, or another account's alias, is refused before anything reaches the provider, and the
provider's key never leaves the head."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import pytest

from sica.gateway import Listen
from sica.gateway.relay import gateway_relay
from tests.support.gateway_thread import serve_in_thread

PROVIDER_KEY = "fake-provider-key-tcp-0123456789abcdef"
CONFIG = """
[models.compat]
provider = "openai_compatible"
model = "compat-model"
base_url = "{base}/v1"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}

[models.other]
provider = "openai_compatible"
model = "other-model"
base_url = "{base}/v1"
api_key_env = "FAKE_KEY"
price = {{ input = 1.0, output = 2.0 }}
"""
HI = {"model": "compat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def both(make_settings, fake_upstream, tmp_path):
    """A gateway on a unix socket and on a loopback TCP port."""
    environ = {"FAKE_KEY": PROVIDER_KEY}
    settings = make_settings(CONFIG.format(base=fake_upstream.base_url), environ=environ)
    socket_dir = tmp_path / "gw"
    with serve_in_thread(
        settings,
        tmp_path / "ledger.sqlite",
        environ,
        Listen(uds=socket_dir / "gateway.sock"),
        also_tcp=Listen(host="127.0.0.1", port=0),
    ) as running:
        yield running


def call(url: str, token: str | None, body: dict[str, object], transport: httpx.HTTPTransport | None = None):
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.post(url + "/v1/chat/completions", content=json.dumps(body), headers=headers)


def test_tcp_needs_the_attempts_token_and_keeps_to_its_aliases(both, fake_upstream):
    assert both.tcp_address is not None and both.tcp_address[0] == "127.0.0.1"
    url = f"http://{both.tcp_address[0]}:{both.tcp_address[1]}"
    mine = both.gateway.open_account("problem a", aliases=frozenset({"compat"}))
    theirs = both.gateway.open_account("problem b", aliases=frozenset({"other"}))

    missing = call(url, None, HI)
    wrong = call(url, "sica-not-a-token", HI)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "account token" in missing.json()["error"]["message"]
    foreign = call(url, mine.token, {**HI, "model": "other"})
    assert foreign.status_code == 403 and "'other'" in foreign.json()["error"]["message"]
    assert fake_upstream.received == []  # nothing refused reached the provider

    allowed = call(url, mine.token, HI)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["choices"][0]["message"]["content"] == "fake answer"
    assert call(url, theirs.token, {**HI, "model": "other"}).status_code == 200
    assert len(list(both.gateway.ledger.calls(mine.id))) == 1 and len(list(both.gateway.ledger.calls(theirs.id))) == 1
    # The key went to the provider only: never back in an answer to the worker.
    assert all(PROVIDER_KEY not in r.text for r in (missing, wrong, foreign, allowed))
    assert fake_upstream.received[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_the_workers_relay_carries_a_sandboxs_calls_to_the_tcp_side_and_no_further(both, fake_upstream, tmp_path):
    """The relay a worker serves into its sandbox: a unix socket whose calls reach the head's TCP listener with
    the same checks (the token and alias list are the gateway's to enforce, not the relay's)."""
    assert both.tcp_address is not None
    host, port = both.tcp_address
    account = both.gateway.open_account("problem", aliases=frozenset({"compat"}))
    uds = tmp_path / "relay" / "gateway.sock"
    loop = asyncio.new_event_loop()
    ready, done = threading.Event(), asyncio.Event()

    async def serve() -> None:
        async with gateway_relay(uds, host, port):
            ready.set()
            await done.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        transport = httpx.HTTPTransport(uds=str(uds))
        assert call("http://gateway", None, HI, transport).status_code == 401
        assert call("http://gateway", account.token, {**HI, "model": "other"}, transport).status_code == 403
        answered = call("http://gateway", account.token, HI, httpx.HTTPTransport(uds=str(uds)))
        assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"] == "fake answer"
        # Many calls at once, each on its own relayed connection.
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(uds)), timeout=30) as client:
            codes = [
                client.post(
                    "http://gateway/v1/chat/completions", json=HI, headers={"authorization": f"Bearer {account.token}"}
                ).status_code
                for _ in range(5)
            ]
        assert codes == [200] * 5
        assert len(list(both.gateway.ledger.calls(account.id))) == 6
        assert oct(Path(uds).parent.stat().st_mode & 0o777) in ("0o700", "0o750")
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
        loop.close()
    assert not uds.exists()
