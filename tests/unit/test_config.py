"""Configuration: the file, the environment over it, defaults, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sica.config import ConfigError, find_config_file, load_settings

EXAMPLE = Path(__file__).parents[2] / "sica.example.toml"


def test_example_config_documents_a_valid_configuration(monkeypatch):
    settings = load_settings(EXAMPLE, {})
    assert {"claude", "vllm", "local", "fake"} <= set(settings.models)
    assert settings.role_alias("main") == "local"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    config = tmp_path / "sica.toml"
    config.write_text("[gateway]\nport = 9000\n")
    monkeypatch.setenv("SICA_GATEWAY__PORT", "9100")
    assert load_settings(config, {}).gateway.port == 9100


def test_paths_are_relative_to_the_config_file(tmp_path):
    config = tmp_path / "conf" / "sica.toml"
    config.parent.mkdir()
    config.write_text('[models.f]\nprovider = "scripted"\nmodel = "m"\nscript = "s.jsonl"\n'
                      '[gateway]\nledger_path = "data/ledger.sqlite"\n')
    settings = load_settings(config, {})
    assert settings.models["f"].script == config.parent / "s.jsonl"
    assert settings.gateway.ledger_path == config.parent / "data/ledger.sqlite"


def test_default_aliases_follow_the_keys_present():
    assert load_settings(None, {}).models["local"].provider == "local"
    assert load_settings(None, {"ANTHROPIC_API_KEY": "x"}).role_alias("main") == "claude"
    assert load_settings(None, {"OPENAI_API_KEY": "x"}).role_alias("reasoning") == "gpt"


@pytest.mark.parametrize(("text", "expected"), [
    ("[models.a]\nprovider = \"martian\"\nmodel = \"m\"\n", r"models.a.provider: Input should be"),
    ("[models.a]\nprovider = \"openai_compatible\"\nmodel = \"m\"\n", r"needs base_url"),
    ("[roles]\nmain = \"nothere\"\n", r"roles.main = 'nothere' names no \[models.nothere\] table"),
    ("[gateway]\nprot = 1\n", r"gateway.prot: Extra inputs are not permitted"),
    ("[models\n", r"not readable TOML"),
])
def test_bad_config_is_one_line_naming_problem_and_fix(tmp_path, text, expected):
    config = tmp_path / "sica.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_settings(config, {})
    assert "\n" not in str(caught.value)


def test_config_file_search_order(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / ".config/sica").mkdir(parents=True)
    cwd.mkdir()
    assert find_config_file(None, cwd, home) is None
    (home / ".config/sica/sica.toml").write_text("")
    assert find_config_file(None, cwd, home) == home / ".config/sica/sica.toml"
    (cwd / "sica.toml").write_text("")
    assert find_config_file(None, cwd, home) == cwd / "sica.toml"
    with pytest.raises(ConfigError, match="not found"):
        find_config_file(tmp_path / "missing.toml", cwd, home)
