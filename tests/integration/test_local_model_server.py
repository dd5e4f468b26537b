"""The real 0.5B model served by llama.cpp: health, completions, lifecycle."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sica.local_model.server import (
    SERVE_MODULE,
    LocalModelServer,
    LocalModelServerError,
    ServeOptions,
)

COMPLETION_TIMEOUT = 60.0


def _process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (exited, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _chat(server: LocalModelServer, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": server.options.alias, "temperature": 0, **body},
        timeout=COMPLETION_TIMEOUT,
    )
    response.raise_for_status()
    return response.json()


@pytest.mark.slow
def test_health_is_ok(local_model_server: LocalModelServer) -> None:
    response = httpx.get(local_model_server.health_url, timeout=5)

    assert response.json() == {"status": "ok"}
    assert local_model_server.healthy()
    assert local_model_server.base_url.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_chat_completion_answers(local_model_server: LocalModelServer) -> None:
    reply = _chat(
        local_model_server,
        {
            "messages": [
                {"role": "user", "content": "What is 2 + 2? Answer with the number only."}
            ],
            "max_tokens": 8,
        },
    )

    assert reply["model"] == local_model_server.options.alias
    assert "4" in reply["choices"][0]["message"]["content"]  # type: ignore[index]


@pytest.mark.slow
def test_json_schema_response_format_is_enforced(local_model_server: LocalModelServer) -> None:
    schema = {
        "type": "object",
        "properties": {"language": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["language", "year"],
        "additionalProperties": False,
    }
    reply = _chat(
        local_model_server,
        {
            "messages": [
                {"role": "user", "content": "Name a programming language and the year it appeared."}
            ],
            "max_tokens": 48,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema},
            },
        },
    )

    answer = json.loads(reply["choices"][0]["message"]["content"])  # type: ignore[index]
    assert set(answer) == {"language", "year"}
    assert isinstance(answer["year"], int)


@pytest.mark.slow
def test_streaming_delivers_chunks(local_model_server: LocalModelServer) -> None:
    body = {
        "model": local_model_server.options.alias,
        "messages": [{"role": "user", "content": "Count from 1 to 5."}],
        "max_tokens": 16,
        "stream": True,
    }
    pieces = []
    with httpx.stream(
        "POST",
        f"{local_model_server.base_url}/chat/completions",
        json=body,
        timeout=COMPLETION_TIMEOUT,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line.removeprefix("data: "))["choices"][0]["delta"]
                pieces.append(delta.get("content") or "")

    assert len(pieces) > 2
    assert "".join(pieces).strip()


@pytest.mark.slow
def test_two_slots_split_the_context_and_serve_concurrently(
    local_model_server: LocalModelServer,
) -> None:
    props = httpx.get(f"{local_model_server.address}/props", timeout=5).json()
    assert props["total_slots"] == 2
    assert (
        props["default_generation_settings"]["n_ctx"] == local_model_server.options.context_per_slot
    )

    request = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    with ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(pool.map(lambda _: _chat(local_model_server, request), range(2)))

    assert all(reply["choices"][0]["message"]["content"] for reply in replies)  # type: ignore[index]


def test_startup_failure_is_one_line_with_the_log_tail(tmp_path: Path) -> None:
    broken_model = tmp_path / "broken.gguf"
    broken_model.write_bytes(b"not a gguf file" * 100)
    server = LocalModelServer(
        ServeOptions(broken_model), tmp_path / "server.log", startup_timeout=60
    )

    with pytest.raises(LocalModelServerError) as raised:
        server.start()

    message = str(raised.value)
    assert "\n" not in message
    assert "exited with code 1 while starting" in message
    assert "could not serve" in message
    assert server.process_id is None


@pytest.mark.slow
def test_cancelled_async_start_stops_the_child(local_model_05b_path: Path, tmp_path: Path) -> None:
    server = LocalModelServer(ServeOptions(local_model_05b_path), tmp_path / "server.log")

    async def start_then_cancel() -> int:
        starting = asyncio.create_task(server.astart())
        while server.process_id is None:
            await asyncio.sleep(0.01)
        pid = server.process_id
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        return pid

    pid = asyncio.run(start_then_cancel())

    assert _process_gone(pid)
    assert server.process_id is None


@pytest.mark.slow
def test_server_exits_when_its_parent_dies(local_model_05b_path: Path, tmp_path: Path) -> None:
    parent_script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from sica.local_model.server import LocalModelServer, ServeOptions
        server = LocalModelServer(ServeOptions(Path(sys.argv[1])), Path(sys.argv[2])).start()
        print(server.process_id, flush=True)
        os._exit(0)
        """
    )
    parent = subprocess.run(
        [
            sys.executable,
            "-c",
            parent_script,
            str(local_model_05b_path),
            str(tmp_path / "server.log"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    child_pid = int(parent.stdout.strip())

    assert _wait_until(lambda: _process_gone(child_pid), timeout=15)


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_entry_exits_cleanly_on_signal(
    local_model_05b_path: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    address_file = tmp_path / "address"
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                SERVE_MODULE,
                "--model",
                str(local_model_05b_path),
                "--address-file",
                str(address_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait_until(address_file.exists, timeout=60), log_path.read_text(errors="replace")[
            -2000:
        ]
        address = address_file.read_text()
        assert httpx.get(f"{address}/health", timeout=5).json() == {"status": "ok"}

        process.send_signal(stop_signal)

        assert process.wait(timeout=20) == 0
        assert (
            log_path.read_text(errors="replace")
            .rstrip()
            .endswith("sica.local_model.serve: stopped")
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_sica_models_serve_serves_until_stopped(local_model_05b_path: Path, tmp_path: Path,
                                                 stop_signal: signal.Signals) -> None:
    """`sica models serve` as a user runs it: it prints where it serves, answers there, and stops on Ctrl-C or
    SIGTERM with its child gone (it used to fail at once: the server was started twice)."""
    from tests.support.cli import clean_environ

    config = tmp_path / "sica.toml"
    config.write_text(f'[local]\ncache_dir = "{local_model_05b_path.parent}"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "sica", "--config", str(config), "models", "serve", "--model", "0.5b", "--port", "0",
         "--parallel", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_environ())
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving qwen2.5-coder-0.5b"), (line, process.stderr and process.stderr.read())
        base_url = line.split(" at ", 1)[1].split()[0]
        assert httpx.get(base_url.removesuffix("/v1") + "/health", timeout=5).json() == {"status": "ok"}
        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None and "stopped" in process.stderr.read()
        with pytest.raises(httpx.TransportError):
            httpx.get(base_url.removesuffix("/v1") + "/health", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
