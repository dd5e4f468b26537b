"""Serve a local GGUF model with an OpenAI-compatible HTTP API on loopback.

Two layers:

* ``start_llama_server`` runs llama.cpp's server (through ``xllamacpp``) inside the
  calling process. Only ``python -m sica.local_model.serve`` calls it.
* ``LocalModelServer`` runs that entry module as a child process and waits until it is
  healthy. A child keeps llama.cpp's heavy stderr logging in a log file, keeps a crash
  in native code from taking the harness down, and can always be stopped by a signal.

``xllamacpp`` belongs to the optional ``local`` extra, so it is imported lazily and only
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import httpx

LOOPBACK_HOST = "127.0.0.1"
SERVE_MODULE = "sica.local_model.serve"

_HEALTH_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 6
_LOG_TAIL_CHARS = 800


class LocalModelServerError(RuntimeError):
    """The local model server could not start or run; the message is one line."""


class LocalBackendMissingError(LocalModelServerError):
    """``xllamacpp`` is not installed, so no local model can be served."""


@dataclass(frozen=True)
class ServeOptions:
    """How to serve one model.

    The server has ``n_parallel`` slots that answer requests concurrently; each slot
    gets ``n_ctx // n_parallel`` tokens of context. ``port`` 0 lets the OS pick a free
    port. ``threads`` None leaves the choice to llama.cpp. ``alias`` is the model name
    the API reports and accepts.
    """

    model_path: Path
    port: int = 0
    n_parallel: int = 1
    n_ctx: int = 4096
    threads: int | None = None
    alias: str = "local"

    host: ClassVar[str] = LOOPBACK_HOST

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        if self.n_parallel < 1:
            raise ValueError(f"n_parallel must be at least 1, got {self.n_parallel}")
        if self.n_ctx < self.n_parallel:
            raise ValueError(
                f"n_ctx ({self.n_ctx}) must be at least n_parallel ({self.n_parallel}): it is split between the slots"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if not self.alias.strip():
            raise ValueError("alias must not be empty")

    @property
    def context_per_slot(self) -> int:
        """Tokens of context each slot (each concurrent request) gets."""
        return self.n_ctx // self.n_parallel

    def to_argv(self) -> list[str]:
        """These options as arguments of ``python -m sica.local_model.serve``."""
        argv = [
            "--model",
            str(self.model_path),
            "--port",
            str(self.port),
            "--parallel",
            str(self.n_parallel),
            "--ctx",
            str(self.n_ctx),
            "--alias",
            self.alias,
        ]
        if self.threads is not None:
            argv += ["--threads", str(self.threads)]
        return argv


def start_llama_server(options: ServeOptions) -> Any:
    """Start llama.cpp's HTTP server in this process and return its ``xllamacpp.Server``.

    Returns once the model is loaded. The server runs on background threads until the
    returned object is garbage collected, so the caller must keep a reference to it.
    """
    _require_model_file(options.model_path)
    xllamacpp = _import_backend()
    params = xllamacpp.CommonParams()
    params.model.path = str(options.model_path)
    params.n_ctx = options.n_ctx
    params.n_parallel = options.n_parallel
    params.kv_unified = False
    if options.threads is not None:
        params.cpuparams.n_threads = options.threads
        params.cpuparams_batch.n_threads = options.threads
    params.port = options.port
    params.hostnames = [LOOPBACK_HOST]
    params.model_alias = {options.alias}
    params.ui = False
    try:
        return xllamacpp.Server(params)
    except RuntimeError as error:
        raise LocalModelServerError(f"llama.cpp could not serve {options.model_path}: {error}") from error


def _require_model_file(model_path: Path) -> None:
    if not model_path.is_file():
        raise LocalModelServerError(f"model file {model_path} does not exist; install the local model first")


def _import_backend() -> Any:
    try:
        import xllamacpp
    except ImportError as error:
        raise LocalBackendMissingError(
            "serving the local model needs xllamacpp, which is not installed; install "
            "sica's `local` extra (uv sync --extra local, or pip install 'sica[local]')"
        ) from error
    return xllamacpp


class LocalModelServer:
    """A local model server running as a child process, stopped on ``close()``.

    ``start()`` launches ``python -m sica.local_model.serve`` with stdout and stderr
    appended to ``log_path`` and returns once ``/health`` answers ok. If the child dies
    or is not healthy within ``startup_timeout`` seconds, it is stopped and a
    ``LocalModelServerError`` carrying the tail of the log is raised. ``close()`` sends
    SIGTERM, then SIGKILL after ``stop_grace`` seconds.

    Use it as a context manager (``with`` or ``async with``), or call
    ``start``/``close`` (``astart``/``aclose`` from asyncio, which do not block the
    event loop).
    """

    def __init__(
        self,
        options: ServeOptions,
        log_path: Path,
        *,
        startup_timeout: float = 120.0,
        stop_grace: float = 10.0,
        python_executable: str = sys.executable,
    ) -> None:
        self._options = options
        self._log_path = log_path
        self._startup_timeout = startup_timeout
        self._stop_grace = stop_grace
        self._python_executable = python_executable
        self._process: subprocess.Popen[bytes] | None = None
        self._address: str | None = None
        self._address_dir: Path | None = None
        self._abandon_start = threading.Event()

    @property
    def options(self) -> ServeOptions:
        return self._options

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def process_id(self) -> int | None:
        """The child's pid while it runs, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def address(self) -> str:
        """``http://127.0.0.1:<port>``; only valid after a successful start."""
        if self._address is None:
            raise LocalModelServerError("the local model server is not running")
        return self._address

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, ``http://127.0.0.1:<port>/v1``."""
        return f"{self.address}/v1"

    @property
    def health_url(self) -> str:
        return f"{self.address}/health"

    def start(self) -> LocalModelServer:
        """Launch the child and block until it is healthy (see the class docstring)."""
        if self._process is not None:
            raise LocalModelServerError("the local model server is already started")
        _require_model_file(self._options.model_path)
        self._abandon_start.clear()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._address_dir = Path(tempfile.mkdtemp(prefix="sica-local-model-"))
        address_file = self._address_dir / "address"
        command = [
            self._python_executable,
            "-m",
            SERVE_MODULE,
            *self._options.to_argv(),
            "--address-file",
            str(address_file),
            "--exit-with-parent",
        ]
        try:
            with open(self._log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._address = self._wait_until_healthy(self._process, address_file)
        except BaseException:
            self.close()
            raise
        return self

    async def astart(self) -> LocalModelServer:
        """``start()`` on a worker thread; if cancelled, the child is stopped before re-raising."""
        starting = asyncio.ensure_future(asyncio.to_thread(self.start))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            self._abandon_start.set()
            with contextlib.suppress(Exception):
                await starting
            raise
        return self

    def healthy(self) -> bool:
        """Whether the server answers ``/health`` with ok right now."""
        if self._address is None:
            return False
        with httpx.Client(timeout=2.0) as client:
            return _answers_healthy(client, self._address)

    def close(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after the grace period). Idempotent."""
        process, self._process = self._process, None
        self._address = None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self._stop_grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._address_dir is not None:
            shutil.rmtree(self._address_dir, ignore_errors=True)
            self._address_dir = None

    async def aclose(self) -> None:
        """``close()`` on a worker thread."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> LocalModelServer:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _wait_until_healthy(self, process: subprocess.Popen[bytes], address_file: Path) -> str:
        """Poll until the child has written its address and ``/health`` is ok."""
        deadline = time.monotonic() + self._startup_timeout
        address: str | None = None
        with httpx.Client(timeout=2.0) as client:
            while True:
                exit_code = process.poll()
                if exit_code is not None:
                    raise LocalModelServerError(
                        f"the local model server exited with code {exit_code} while starting; {self._log_summary()}"
                    )
                if address is None and address_file.exists():
                    address = address_file.read_text(encoding="utf-8").strip()
                if address is not None and _answers_healthy(client, address):
                    return address
                if time.monotonic() > deadline:
                    raise LocalModelServerError(
                        f"the local model server was not healthy after "
                        f"{self._startup_timeout:g}s; {self._log_summary()}"
                    )
                if self._abandon_start.wait(_HEALTH_POLL_SECONDS):
                    raise LocalModelServerError("starting the local model server was cancelled")

    def _log_summary(self) -> str:
        """The last lines of the log, on one line, with the log's path."""
        try:
            with open(self._log_path, "rb") as log:
                log.seek(0, 2)
                size = log.tell()
                log.seek(max(0, size - 16 * 1024))
                text = log.read().decode("utf-8", errors="replace")
        except OSError as error:
            return f"log {self._log_path} unreadable: {error}"
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        tail = " | ".join(lines[-_LOG_TAIL_LINES:])[-_LOG_TAIL_CHARS:]
        return f"log {self._log_path} ends: {tail or '(empty)'}"


def _answers_healthy(client: httpx.Client, address: str) -> bool:
    try:
        response = client.get(f"{address}/health")
        return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
