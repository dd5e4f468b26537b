"""Serve a local model in the foreground: ``python -m sica.local_model.serve --model PATH``.

Runs until SIGTERM or SIGINT, then shuts llama.cpp down and exits 0 (1 if the server
could not start). ``--address-file`` makes it write its listening address
(``http://127.0.0.1:<port>``) to that file once the model is loaded, so a parent can ask
for port 0. ``--exit-with-parent`` makes it also stop when the process that started it
is gone, so a harness killed hard does not leave a gigabyte-sized server behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sica.local_model.server import LocalModelServerError, ServeOptions, start_llama_server

_PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ServeCommand:
    """Everything the command line asked for."""

    options: ServeOptions
    address_file: Path | None
    exit_with_parent: bool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sica.local_model.serve",
        description="Serve a GGUF model with an OpenAI-compatible API on 127.0.0.1.",
    )
    parser.add_argument("--model", type=Path, required=True, help="path of the GGUF file")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks one")
    parser.add_argument("--parallel", type=int, default=1, help="concurrent request slots")
    parser.add_argument("--ctx", type=int, default=4096, help="total context, split between slots")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (llama.cpp decides if unset)")
    parser.add_argument("--alias", default="local", help="model name the API reports")
    parser.add_argument("--address-file", type=Path, default=None, help="write the listening address here")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process exits")
    return parser


def parse_command(argv: Sequence[str]) -> ServeCommand:
    """Parse arguments; invalid option values end the program with a usage error."""
    parser = build_parser()
    arguments = parser.parse_args(list(argv))
    try:
        options = ServeOptions(
            model_path=arguments.model,
            port=arguments.port,
            n_parallel=arguments.parallel,
            n_ctx=arguments.ctx,
            threads=arguments.threads,
            alias=arguments.alias,
        )
    except ValueError as error:
        parser.error(str(error))
    return ServeCommand(
        options=options,
        address_file=arguments.address_file,
        exit_with_parent=arguments.exit_with_parent,
    )


def serve_until_stopped(command: ServeCommand) -> int:
    """Serve until SIGTERM/SIGINT (or the parent's exit, if asked); return the exit code."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    parent_pid = os.getppid()
    try:
        server = start_llama_server(command.options)
    except LocalModelServerError as error:
        print(f"sica.local_model.serve: {error}", file=sys.stderr, flush=True)
        return 1
    address = server.listening_address
    if command.address_file is not None:
        _write_atomically(command.address_file, address)
    print(
        f"sica.local_model.serve: serving {command.options.model_path.name} as "
        f"{command.options.alias!r} at {address}/v1",
        file=sys.stderr,
        flush=True,
    )
    while not stop_requested.wait(_PARENT_CHECK_SECONDS):
        if command.exit_with_parent and os.getppid() != parent_pid:
            break
    del server
    print("sica.local_model.serve: stopped", file=sys.stderr, flush=True)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Write via a rename so a reader never sees a partial address."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def main(argv: Sequence[str] | None = None) -> int:
    return serve_until_stopped(parse_command(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
