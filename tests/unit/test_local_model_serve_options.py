"""Server options, the serve command line and the missing-backend error (no model needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sica.local_model.serve import parse_command
from sica.local_model.server import (
    LocalBackendMissingError,
    LocalModelServer,
    LocalModelServerError,
    ServeOptions,
    start_llama_server,
)

MODEL = Path("/models/model.gguf")


def test_context_is_split_between_slots() -> None:
    assert ServeOptions(MODEL, n_parallel=2, n_ctx=4096).context_per_slot == 2048


def test_host_is_always_loopback() -> None:
    assert ServeOptions(MODEL).host == "127.0.0.1"


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 70000},
        {"n_parallel": 0},
        {"n_parallel": 4, "n_ctx": 2},
        {"threads": 0},
        {"alias": " "},
    ],
)
def test_invalid_options_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ServeOptions(MODEL, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        ServeOptions(MODEL),
        ServeOptions(
            MODEL, port=18099, n_parallel=3, n_ctx=6000, threads=2, alias="qwen2.5-coder-0.5b"
        ),
    ],
)
def test_options_survive_the_command_line(options: ServeOptions) -> None:
    command = parse_command(
        [*options.to_argv(), "--address-file", "/tmp/address", "--exit-with-parent"]
    )

    assert command.options == options
    assert command.address_file == Path("/tmp/address")
    assert command.exit_with_parent


def test_invalid_command_line_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        parse_command(["--model", str(MODEL), "--parallel", "0"])

    assert raised.value.code == 2


def test_missing_backend_tells_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "xllamacpp", None)

    with pytest.raises(LocalBackendMissingError, match="`local` extra"):
        start_llama_server(ServeOptions(model))


def test_urls_need_a_running_server(tmp_path: Path) -> None:
    server = LocalModelServer(ServeOptions(MODEL), tmp_path / "server.log")

    with pytest.raises(LocalModelServerError, match="not running"):
        _ = server.base_url
    assert not server.healthy()
    server.close()


def test_missing_model_file_fails_before_starting_anything(tmp_path: Path) -> None:
    server = LocalModelServer(ServeOptions(tmp_path / "absent.gguf"), tmp_path / "server.log")

    with pytest.raises(LocalModelServerError, match=r"absent\.gguf does not exist"):
        server.start()
    assert server.process_id is None
    assert not (tmp_path / "server.log").exists()
