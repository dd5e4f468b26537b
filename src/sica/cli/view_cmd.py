"""`sica view`: serve the web viewer of runs, evaluations and solves on a local port until Ctrl-C."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import quote

import typer
import uvicorn

from sica.archive import ArchiveError
from sica.archive.run import DATABASE
from sica.cli.state import UserError, state
from sica.viewer import Sources, create_app
from sica.viewer.runs import connect_read_only, run_folder

DEFAULT_PORT = 8770


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def view(
    ctx: typer.Context,
    run: Annotated[
        str | None,
        typer.Argument(
            help="A run to open at: its name under [loop] runs_dir, or its folder. [default: the runs list]"
        ),
    ] = None,
    solves: Annotated[bool, typer.Option("--solves", help="Open at the solves under [solve] solves_dir.")] = False,
    evals: Annotated[bool, typer.Option("--evals", help="Open at the evaluations under [eval] results_dir.")] = False,
    port: Annotated[int, typer.Option(help="TCP port (0 = any free port).", min=0, max=65535)] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on; any but loopback needs --token.")] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(help="Token every request must carry (required off loopback); shown in the address.")
    ] = None,
) -> None:
    """Serve a live web viewer: the runs (status, spend, versions, best utility), a run (iterations, chart, lineage,
    spend, meta steps), a version (change, diff, per-problem results) and an attempt (call graph, events, ledger
    calls, overseer, diff, verdict). Everything is read-only: it runs beside `sica improve`, `sica eval` and `sica
    solve`."""
    cli = state(ctx)
    settings = cli.settings()
    if sum((run is not None, solves, evals)) > 1:
        raise UserError("give one of RUN, --solves and --evals")
    if not is_loopback(host) and not token:
        raise UserError(f"--host {host} is reachable from other machines: pass --token T (any secret) as well")
    sources = Sources(
        settings.loop.runs_dir.expanduser().absolute(),
        settings.eval.results_dir.expanduser().absolute(),
        settings.solve.solves_dir.expanduser().absolute(),
    )
    path = "/"
    if run is not None:
        given = Path(run).expanduser()
        if (given / DATABASE).is_file():  # a run's folder: its runs are those beside it
            given = given.absolute()
            sources = dataclasses.replace(sources, runs_dir=given.parent)
            run = given.name
        try:
            folder = run_folder(sources.runs_dir, run)
            with closing(connect_read_only(folder / DATABASE)) as db:
                db.execute("SELECT COUNT(*) FROM versions").fetchone()
        except ArchiveError as error:
            raise UserError(str(error)) from None
        except sqlite3.Error as error:  # a corrupt or foreign database
            raise UserError(
                f"{folder / DATABASE} is not a readable run database ({error}): restore it from a backup, or "
                "view another run"
            ) from None
        path = f"/runs/{quote(run, safe='')}"
    elif solves:
        path = "/solves"
    elif evals:
        path = "/evals"
    listener = _listen(host, port)
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={quote(token, safe='')}" if token else ""
    cli.out.print(
        f"sica view: http://{shown}:{bound}{path}{query}\nPress Ctrl-C to stop.", highlight=False, soft_wrap=True
    )
    hosts = None if token else {"127.0.0.1", "localhost", "::1", host}
    stopping = threading.Event()
    app = create_app(sources, settings.loop.utility, token, hosts, stopping)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    try:
        _Server(config, stopping).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again once it has shut down
        pass
    cli.err.print("viewer stopped")


class _Server(uvicorn.Server):
    """uvicorn's server, which on Ctrl-C (or SIGTERM) first ends the live streams, so pages that follow them do
    not hold the shutdown up."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pass --port N, or --port 0 for any free port") from None
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}): pass another --host or --port") from None
    listener.listen(128)
    listener.set_inheritable(True)
    return listener
