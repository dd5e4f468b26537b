"""Hostile agent versions for the exploit battery: an agent version whose code is a few lines of Python an
adversary wrote, run through the real `sica eval` path (its own environment, the real sandbox, the real
gateway with a scripted model), so a test can show that what it tries ends scored 0, `tampered`, invalid or
refused.

The version's entry point runs `actions` with these names defined: `workdir`, `logdir`, `task` (paths inside
the sandbox, `task` None for `improve`), `archive` (the archive view for `improve`, else None), `end(status,
summary)` (writes the top agent's `agent_end` event; called with "done" after the actions unless they called
it), `answer(text)` (writes `answer.txt`) and `call_model(body, path)` (one HTTP call to the gateway over its
unix socket with the agent's token; returns the status and the decoded body).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.cli import run_sica
from tests.support.config import write_eval_config
from tests.support.evals import results_of

_MAIN = '''
"""A hostile agent version (tests/support/hostile.py)."""
import http.client, json, os, socket, sys, time
from pathlib import Path

args = sys.argv[1:]
def option(name):
    return Path(args[args.index(name) + 1]) if name in args else None

workdir, logdir = option("--workdir"), option("--logdir")
task, archive = option("--task"), option("--archive")
logdir.mkdir(parents=True, exist_ok=True)
_ended = []

def _emit(event_type, **data):
    line = {"v": 1, "ts": time.time(), "run": os.environ.get("SICA_AGENT_RUN_ID", ""),
            "problem": os.environ.get("SICA_AGENT_PROBLEM_ID", ""), "agent_id": "main", "parent_id": None,
            "type": event_type, "data": data}
    with open(logdir / "events.jsonl", "a") as events:
        events.write(json.dumps(line) + "\\n")

def end(status="done", summary="hostile version"):
    _ended.append(status)
    _emit("agent_end", status=status, summary=summary, steps=1)

def answer(text):
    (logdir / "answer.txt").write_text(text)

class _Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self._path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)

def call_model(body, path="/v1/chat/completions"):
    connection = _Unix(os.environ["SICA_AGENT_GATEWAY"].removeprefix("unix:"))
    connection.request("POST", path, body=json.dumps(body) if not isinstance(body, bytes) else body,
                       headers={"Authorization": "Bearer " + os.environ["SICA_AGENT_TOKEN"],
                                "x-api-key": os.environ["SICA_AGENT_TOKEN"], "content-type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")

_emit("agent_start", kind="solver", task=str(task), model="hostile")
exec(compile((Path(__file__).parent / "actions.py").read_text(), "actions.py", "exec"))
if not _ended:
    end()
'''


def hostile_agent(root: Path, actions: str, *, dependencies: list[str] | None = None,
                  extra_files: dict[str, str] | None = None) -> Path:
    """Write an agent version at `root` whose run is `actions` (dedented Python; see the module's doc)."""
    package = root / "sica_agent"
    package.mkdir(parents=True, exist_ok=True)
    deps = json.dumps(dependencies or [])
    (root / "pyproject.toml").write_text(f'[project]\nname = "hostile"\nversion = "0"\ndependencies = {deps}\n')
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(_MAIN)
    (package / "actions.py").write_text(textwrap.dedent(actions))
    for relative, text in (extra_files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def write_scripted_config(home: Path, extra: str = "", eval_keys: Mapping[str, Any] | None = None) -> Path:
    """The battery's `sica.toml` in `home` (tests/support/config.py's `write_eval_config`, answering "ok") with no
    infrastructure retries, so a problem's result is its one attempt's; `eval_keys` are more `[eval]` keys,
    `extra` more sections."""
    return write_eval_config(home, eval_keys={"infra_retries": 0, **(eval_keys or {})}, extra=extra)


def eval_results(home: Path, agent: Path, *benchmarks: str, timeout: float = 600) -> list[dict[str, Any]]:
    """Run `sica eval --agent AGENT -b ...` in `home` as a user would; the results of its JSONL file."""
    args = [arg for name in benchmarks for arg in ("-b", name)]
    done = run_sica(home, "eval", "--agent", str(agent), *args, "--workers", "2", timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return results_of(home)
