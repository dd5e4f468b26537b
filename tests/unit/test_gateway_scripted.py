"""The scripted upstream through the real gateway: both wire formats, official SDKs, tool calls, streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from sica.gateway import Listen, run_gateway
from sica.sandbox.mounts import SANDBOX_UID
from tests.support.config import scripted_config

SCRIPT = """
{"content": "hello there", "usage": {"input": 10, "output": 3}}
{"tool_calls": [{"name": "view", "arguments": {"path": "a.py"}}], "usage": {"input": 20, "output": 5}}
"""

CONFIG = scripted_config({"fake": {"model": "scripted-model"},
                          "fake_claude": {"model": "scripted-claude", "wire": "anthropic", "price": None}})


@pytest.fixture
def gateway(make_settings, serve):
    return serve(make_settings(CONFIG, {"script.jsonl": SCRIPT}))


def openai_client(running, token):
    return openai.OpenAI(base_url=running.base_url + "/v1", api_key=token, max_retries=0)


def test_openai_sdk_gets_content_then_tool_call_and_ledger_meters_both(gateway):
    account = gateway.gateway.open_account("test")
    client = openai_client(gateway, account.token)
    first = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
    assert first.choices[0].message.content == "hello there"
    second = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
    call = second.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("view", '{"path": "a.py"}')
    rows = list(gateway.gateway.ledger.calls(account.id))
    assert [(r["status"], r["input_tokens"], r["output_tokens"]) for r in rows] == [("ok", 10, 3), ("ok", 20, 5)]
    # 1 USD/M input and 2 USD/M output: 10·1000 + 3·2000 nano-USD, then 20·1000 + 5·2000.
    assert [r["cost_nano"] for r in rows] == [16_000, 30_000]
    assert gateway.gateway.account(account.id).spent_nano == 46_000
    assert gateway.gateway.account(account.id).reserved_nano == 0


def test_each_account_reads_the_script_from_its_own_position(gateway):
    a = openai_client(gateway, gateway.gateway.open_account("a").token)
    b = openai_client(gateway, gateway.gateway.open_account("b").token)
    ask = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    assert a.chat.completions.create(**ask).choices[0].message.content == "hello there"
    assert b.chat.completions.create(**ask).choices[0].message.content == "hello there"
    assert a.chat.completions.create(**ask).choices[0].message.tool_calls


def test_a_new_account_reads_the_script_as_it_is_at_its_first_call(gateway, tmp_path):
    """So a harness can write a script for each attempt (the smoke check does); an account already reading keeps
    the lines it started with, and a script that became unreadable is the upstream's failure, not a crash."""
    a = openai_client(gateway, gateway.gateway.open_account("a").token)
    ask = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    assert a.chat.completions.create(**ask).choices[0].message.content == "hello there"
    (tmp_path / "script.jsonl").write_text('{"content": "a new script"}\n')
    b = openai_client(gateway, gateway.gateway.open_account("b").token)
    assert b.chat.completions.create(**ask).choices[0].message.content == "a new script"
    assert a.chat.completions.create(**ask).choices[0].message.tool_calls
    (tmp_path / "script.jsonl").write_text("not json\n")
    c = openai_client(gateway, gateway.gateway.open_account("c").token)
    with pytest.raises(openai.APIStatusError) as caught:
        c.chat.completions.create(**ask)
    assert caught.value.status_code == 503 and "script.jsonl:1" in caught.value.body["message"]


def test_exhausted_script_is_upstream_unavailable(gateway):
    client = openai_client(gateway, gateway.gateway.open_account("a").token)
    ask = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    client.chat.completions.create(**ask)
    client.chat.completions.create(**ask)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**ask)
    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "upstream_unavailable"


def test_openai_stream_is_metered_from_its_final_chunk(gateway):
    account = gateway.gateway.open_account("s")
    client = openai_client(gateway, account.token)
    stream = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "hello there"
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert (row["status"], row["stream"], row["input_tokens"], row["output_tokens"]) == ("ok", 1, 10, 3)


def test_unknown_token_is_401_and_unknown_model_400(gateway):
    client = openai_client(gateway, "not-a-token")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="fake", messages=[])
    assert caught.value.body["type"] == "unauthorized"
    client = openai_client(gateway, gateway.gateway.open_account("a").token)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nope", messages=[])
    assert "unknown model 'nope'" in caught.value.message


def test_models_and_health(gateway):
    token = gateway.gateway.open_account("a").token
    models = openai_client(gateway, token).models.list()
    assert [m.id for m in models.data] == ["fake", "fake_claude"]
    assert httpx.get(gateway.base_url + "/healthz").json()["status"] == "ok"


def anthropic_client(running, token):
    return anthropic.Anthropic(base_url=running.base_url, api_key=token, max_retries=0)


def test_anthropic_sdk_gets_text_then_tool_use(gateway):
    account = gateway.gateway.open_account("claude")
    client = anthropic_client(gateway, account.token)
    first = client.messages.create(model="fake_claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert first.content[0].text == "hello there"
    second = client.messages.create(model="fake_claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert (second.content[0].name, second.content[0].input) == ("view", {"path": "a.py"})
    rows = list(gateway.gateway.ledger.calls(account.id))
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(10, 3), (20, 5)]


def test_anthropic_stream_is_metered_from_message_start_and_delta(gateway):
    account = gateway.gateway.open_account("claude")
    client = anthropic_client(gateway, account.token)
    with client.messages.stream(model="fake_claude", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "hello there"
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 10, 3)


def test_wire_mismatch_is_bad_request(gateway):
    client = anthropic_client(gateway, gateway.gateway.open_account("a").token)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="fake", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "bad_request"
    assert "/v1/chat/completions" in caught.value.message


def test_serves_on_a_unix_socket(make_settings, tmp_path):
    async def main() -> str:
        settings = make_settings(CONFIG, {"script.jsonl": SCRIPT})
        socket_path = tmp_path / "run" / "gateway.sock"
        async with run_gateway(settings, {}, tmp_path / "uds.sqlite", Listen(uds=socket_path)) as running:
            account = running.gateway.open_account("uds")
            async with running.client(account.token) as http:
                reply = await http.post("/v1/chat/completions",
                                        json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
            return reply.json()["choices"][0]["message"]["content"]

    assert asyncio.run(main()) == "hello there"


CONNECT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')"


def connect_as(uid: int, socket_path) -> subprocess.CompletedProcess[str]:
    """Connect to the socket as `uid` (and its own group only), the way a sandbox or another local user would."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c",
                           CONNECT, str(socket_path)], capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason="the socket's group is the sandbox user's only when the harness is root")
def test_the_socket_is_reachable_by_the_sandbox_user_and_no_other(make_settings):
    """Mode 0666 let any local user spend through the gateway: the socket's folder is root's with the sandbox
    user's group (0750) and the socket 0660, so uid 65534 connects and another unprivileged user cannot."""
    async def main(socket_path) -> tuple[int, int, int, int, str, str]:
        settings = make_settings(CONFIG, {"script.jsonl": SCRIPT})
        async with run_gateway(settings, {}, socket_path.parent.parent / "uds.sqlite", Listen(uds=socket_path)):
            folder, sock = socket_path.parent.stat(), socket_path.stat()
            sandbox = await asyncio.to_thread(connect_as, SANDBOX_UID, socket_path)
            stranger = await asyncio.to_thread(connect_as, 12345, socket_path)
        return (stat.S_IMODE(folder.st_mode), folder.st_gid, stat.S_IMODE(sock.st_mode), sock.st_gid,
                sandbox.stdout + sandbox.stderr, stranger.stdout + stranger.stderr)

    with tempfile.TemporaryDirectory(prefix="sica-socket-test-") as scratch:
        Path(scratch).chmod(0o755)
        folder_mode, folder_gid, socket_mode, socket_gid, sandbox, stranger = asyncio.run(
            main(Path(scratch) / "gateway" / "gateway.sock"))
    assert (folder_mode, folder_gid, socket_mode, socket_gid) == (0o750, SANDBOX_UID, 0o660, SANDBOX_UID)
    assert "connected" in sandbox
    assert "PermissionError" in stranger and "connected" not in stranger


def test_a_socket_folder_shared_with_other_files_is_refused(make_settings, tmp_path):
    """The gateway narrows its socket's folder to itself and the sandbox user: never a folder others use."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("someone else's")

    async def main() -> None:
        settings = make_settings(CONFIG, {"script.jsonl": SCRIPT})
        async with run_gateway(settings, {}, tmp_path / "uds.sqlite", Listen(uds=tmp_path / "run" / "gateway.sock")):
            pass

    with pytest.raises(ValueError, match="folder of its own"):
        asyncio.run(main())


def test_a_failure_inside_the_gateway_still_settles_the_call(gateway):
    async def broken(request):
        raise RuntimeError("a bug")

    gateway.gateway.routes["fake"].upstream.complete = broken
    account = gateway.gateway.open_account("bug", limit_usd=1.0)
    with pytest.raises(openai.InternalServerError):
        openai_client(gateway, account.token).chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "hi"}])
    (row,) = gateway.gateway.ledger.calls(account.id)
    assert (row["status"], row["error_class"]) == ("internal_error", "RuntimeError")
    state = gateway.gateway.account(account.id)
    assert state.reserved_nano == 0 and state.spent_nano == row["cost_nano"] == row["reserved_nano"]


def test_a_failure_while_settling_a_stream_still_ends_it(gateway):
    """A bug in the gateway's bookkeeping after the upstream finished: the client gets an error event and the
    end of the stream, never a stream left open."""
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    gateway.gateway._finish = broken
    account = gateway.gateway.open_account("s")
    with httpx.Client(timeout=10) as client:
        reply = client.post(gateway.base_url + "/v1/chat/completions", json={
            "model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {account.token}"})
    assert reply.status_code == 200 and "the gateway failed while settling the call" in reply.text


def test_a_call_still_running_at_shutdown_is_settled_without_error_reports(make_settings, tmp_path, capfd):
    """An agent gone while its model still answers: shutting down cancels the call after uvicorn's grace
    period; the ledger settles it, and uvicorn's reports of the cancellation are not shown as errors."""
    async def main() -> str:
        settings = make_settings(CONFIG, {"script.jsonl": '{"content": "late", "latency_s": 60}\n'})
        async with run_gateway(settings, {}, tmp_path / "ledger.sqlite", Listen()) as running:
            account = running.gateway.open_account("slow")
            client = httpx.AsyncClient(base_url=running.base_url, timeout=120,
                                       headers={"authorization": f"Bearer {account.token}"})
            call = asyncio.create_task(client.post("/v1/chat/completions", json={
                "model": "fake", "messages": [{"role": "user", "content": "hi"}]}))
            await asyncio.sleep(0.5)
        with contextlib.suppress(httpx.HTTPError):
            await call
        await client.aclose()
        return account.id

    account_id = asyncio.run(main())
    ledger = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert ledger.execute("SELECT status FROM calls WHERE account_id = ?", (account_id,)).fetchall() == [
        ("cancelled",)]
    assert "ERROR" not in capfd.readouterr().err  # uvicorn logs to the process's stderr
