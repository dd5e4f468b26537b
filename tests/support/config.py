"""`sica.toml` for tests: one factory for the text (scripted-model aliases, then the tables a test sets), and the
writers of a test's configuration with its scripts for `sica eval` and `sica improve`.

A scripted alias replays a JSONL script through the real gateway (src/sica/gateway/scripted.py has the lines'
format); each script is written next to the configuration, which names it relative to itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sica.config import default_envs_dir
from tests.support.evals import SOLVE_SCRIPT

#: The agents' environments the tests share (cached across tests and sessions), not one built per test.
ENVS = default_envs_dir(os.geteuid())
#: What a scripted alias charges unless told otherwise: $1 per million input tokens, $2 per million output tokens.
PRICE = {"input": 1.0, "output": 2.0}
#: `[eval]` for a test's `sica eval`: results under `evals`, next to the configuration, and a retry soon.
EVAL = {"results_dir": "evals", "retry_delay_s": 0.1}
#: One answer, whatever is asked.
OK_SCRIPT = [{"content": "ok", "usage": {"input": 10, "output": 2}}]

Script = Sequence[Mapping[str, Any]]


def toml_value(value: Any) -> str:
    """`value` (a string, path, number, boolean or a mapping of them) as TOML."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    return json.dumps(str(value) if isinstance(value, Path) else value)  # TOML writes these as JSON does


def toml_table(name: str, keys: Mapping[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items()) + "\n"


def scripted_config(aliases: Mapping[str, Mapping[str, Any]] | None = None, extra: str = "",
                    **tables: Mapping[str, Any]) -> str:
    """A `sica.toml` text: a `[models.NAME]` table for each of `aliases` (default: one, `fake`), a scripted model
    (`model = "scripted"`, `script = "script.jsonl"` and `price = PRICE` unless its keys say otherwise; a price of
    None is none), then a table for each of `tables` (`eval=EVAL` is `[eval]`), then `extra` (TOML text)."""
    text = ""
    for alias, keys in (aliases if aliases is not None else {"fake": {}}).items():
        model = {"provider": "scripted", "model": "scripted", "script": "script.jsonl", "price": PRICE, **keys}
        text += toml_table(f"models.{alias}", {key: value for key, value in model.items() if value is not None})
    return text + "".join(toml_table(name, keys) for name, keys in tables.items()) + extra


def jsonl(script: Script) -> str:
    """A script's text: one JSON line a response."""
    return "".join(json.dumps(line) + "\n" for line in script)


def write_config(home: Path, text: str, scripts: Mapping[str, Script] | None = None) -> Path:
    """Write `home/sica.toml` and each of `scripts` (by file name); the configuration's path."""
    for name, script in (scripts or {}).items():
        (home / name).write_text(jsonl(script))
    config = home / "sica.toml"
    config.write_text(text)
    return config


def write_eval_config(home: Path, script: Script = OK_SCRIPT, eval_keys: Mapping[str, Any] | None = None,
                      extra: str = "") -> Path:
    """The configuration of a `sica eval` in `home` whose alias `fake` replays `script`: results in `home/evals`;
    `eval_keys` are more `[eval]` keys, `extra` more TOML."""
    text = scripted_config(eval={**EVAL, **(eval_keys or {})}, extra=extra)
    return write_config(home, text, {"script.jsonl": script})


def write_improve_config(home: Path, meta_script: Script, task_script: Script = SOLVE_SCRIPT, *,
                         loop_keys: Mapping[str, Any] | None = None,
                         eval_keys: Mapping[str, Any] | None = None,
                         runner_keys: Mapping[str, Any] | None = None) -> Path:
    """The configuration of a `sica improve` in `home`: the scripted aliases `task` (the evaluated agents' model,
    replaying `task_script`, by default one solving `make_tasks`' tasks) and `meta` (the meta agent's), a first
    stage of two problems and the shared agent environments; `loop_keys` and `eval_keys` are more `[loop]` and
    `[eval]` keys, `runner_keys` a `[runner]` table."""
    aliases = {"task": {"script": "solve.jsonl"}, "meta": {"script": "meta.jsonl"}}
    text = scripted_config(aliases, loop={"meta_model": "meta", "stages": [2], **(loop_keys or {})},
                           solve={"envs_dir": ENVS}, eval={"results_dir": "evals", **(eval_keys or {})},
                           **({"runner": runner_keys} if runner_keys else {}))
    return write_config(home, text, {"solve.jsonl": task_script, "meta.jsonl": meta_script})
