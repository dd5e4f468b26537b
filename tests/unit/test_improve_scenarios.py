"""Scenarios of `sica improve` with scripted models through the real gateway, bwrap sandbox, git and SQLite: a meta
agent that adds a tool the task model needs, so the next version scores higher on the same task script and then
improves itself with that tool; changes that break the agent, each recorded invalid with its cause while the loop
goes on; and a meta agent that tries to write outside its copy of the code."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from sica.archive import Run
from sica.config import Settings, load_settings
from sica.loop.improve import ImproveRequest, improve
from sica.loop.utility import problem_utility, version_utility
from tests.support.config import write_improve_config
from tests.support.evals import SOLVE_SCRIPT, make_tasks

#: What a task model's call costs (usage given, so the costs of both agents are the same): $1/M in, $2/M out.
USAGE = [{"input": 1000, "output": 20}, {"input": 1100, "output": 10}]
COST_PER_PROBLEM = (2100 * 1.0 + 30 * 2.0) / 1e6

#: The task model calls `append`, a tool the seed agent does not have (an unknown tool is a format error it
#: reports back to the model), then ends.
APPEND_SCRIPT = [
    {"tool_calls": [{"name": "append", "arguments": {"path": "done.txt", "text": "ok\n"}}], "usage": USAGE[0]},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "appended to done.txt"}}], "usage": USAGE[1]},
]

APPEND_TOOL = '''\
"""Adding text at the end of a file."""

from __future__ import annotations

from typing import Any

from sica_agent.tools.base import ToolContext, ToolResult, ToolSpec
from sica_agent.tools.paths import display_path, resolve_path


class AppendTool:
    """Add text at the end of a file, made when missing."""

    spec = ToolSpec(
        name="append",
        description="Add text at the end of a file, creating the file when it is missing.",
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file, relative to the working directory."},
                "text": {"type": "string", "description": "The text to add at its end."},
            },
            "required": ["path", "text"],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(arguments["text"])
        return ToolResult(f"appended {len(arguments['text'])} characters to {display_path(context, path)}.")
'''

APPEND_TEST = '''\
from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext


def test_append_adds_at_the_end_and_stays_in_the_workdir(tmp_path):
    context = ToolContext(tmp_path)
    for text in ("ok\\n", "more\\n"):
        assert run_tool(ALL_TOOLS["append"], {"path": "done.txt", "text": text}, context).ok
    assert (tmp_path / "done.txt").read_text() == "ok\\nmore\\n"
    assert not run_tool(ALL_TOOLS["append"], {"path": "../out.txt", "text": "no"}, context).ok
'''


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


#: Replayed by every meta step. Each edit is written so that replaying it on a version that has it already
#: changes nothing (`replace` finds no `old`, `create` writes the same content). The last edit uses `append`:
#: only a meta agent that has the tool (agent 1 and later) can make it.
ADD_APPEND_TOOL = [
    call("create", path="sica_agent/tools/append.py", content=APPEND_TOOL),
    call("replace", path="sica_agent/tools/__init__.py", old="from typing import Any\n\nfrom sica_agent.tools.base",
         new="from typing import Any\n\nfrom sica_agent.tools.append import AppendTool\nfrom sica_agent.tools.base"),
    call("replace", path="sica_agent/tools/__init__.py", old="            CompleteTool(),\n        )",
         new="            CompleteTool(),\n            AppendTool(),\n        )"),
    call("replace", path="sica_agent/kinds.py", old='"create", "undo")', new='"create", "undo", "append")'),
    call("replace", path="tests/test_tools.py", old='"submit", "complete"])', new='"submit", "complete", "append"])'),
    call("create", path="tests/test_tool_append.py", content=APPEND_TEST),
    call("create", path="description.txt", content="agent 1: an append tool, which models ask for\n"),
    call("replace", path="CHANGELOG.md", old="# Changelog\n\n## agent-0",
         new="# Changelog\n\n## agent-1\nAdded the append tool: models call it, agent 0 refused.\n\n## agent-0"),
    call("append", path="CHANGELOG.md", text="\n## agent-2\nWritten with the append tool.\n"),
    call("complete", summary="added an append tool"),
]


def settings_of(home: Path) -> Settings:
    return load_settings(home / "sica.toml", {})


def run_loop(home: Path, iterations: int) -> list[str]:
    lines: list[str] = []
    request = ImproveRequest(home / "runs" / "r1", [f"taskdir:{home / 'tasks'}"], [], iterations, model="task")
    asyncio.run(improve(settings_of(home), {}, request, lines.append, asyncio.Event()))
    return lines


def changed_files(diff: str) -> set[str]:
    return {match.group(1) for match in re.finditer(r"^diff --git a/(\S+) b/", diff, re.MULTILINE)}


def scores(run: Run, version: int) -> dict[str, float]:
    return {e.problem_id.rsplit("/", 1)[1]: e.score for e in run.evaluations(version)}


def test_a_new_tool_the_task_model_needs_raises_the_score_and_the_better_version_improves_next(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok", "gamma": "other"})
    write_improve_config(tmp_path, task_script=APPEND_SCRIPT, meta_script=ADD_APPEND_TOOL)
    lines = run_loop(tmp_path, iterations=2)

    assert lines[0] == "evaluating agent 0"
    # Agent 1 is ahead of agent 0, but not provably on three problems: it came close, so agent 0 is re-evaluated.
    assert re.fullmatch(r"iteration 1: agent-1 from agent-0 by agent-0 · score 0\.667 \(all; agent-0 re-evaluated "
                        r"\(came close: \+0\.333 ± 0\.717 on 3 shared problems\)\) · \$0\.\d{4} "
                        r"\(meta \$0\.\d{4}\) · \d+ s", lines[1]), lines[1]
    # Agent 1 is now best and the most recent version not provably worse: it is both meta agent and base. Agent 2's
    # first stage (alpha, beta) scores and costs as agent 1's (times charged are the scripted latencies, none here),
    # so it is not provably worse and the rest runs; it ties agent 1, which is re-evaluated in turn.
    assert lines[2].startswith("iteration 2: agent-2 from agent-1 by agent-1 · score 0.667 (all; agent-1 re-evaluated"
                               " (came close: +0.000 ± 0.000 on 3 shared problems))"), lines[2]
    assert len(lines) == 3

    weights = settings_of(tmp_path).loop.utility
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert [(v.number, v.parent, v.state) for v in run.versions()] == [
            (0, None, "valid"), (1, 0, "valid"), (2, 1, "valid")]
        agent_1 = run.version(1)
        assert agent_1.description == "agent 1: an append tool, which models ask for"
        assert "Added the append tool" in agent_1.change_log

        diff = run.diff(1)
        assert changed_files(diff) == {"CHANGELOG.md", "description.txt", "sica_agent/kinds.py",
                                       "sica_agent/tools/__init__.py", "sica_agent/tools/append.py",
                                       "tests/test_tool_append.py", "tests/test_tools.py"}
        for added in ("+class AppendTool:", "+from sica_agent.tools.append import AppendTool",
                      "+            AppendTool(),", '"undo", "append")',
                      '"submit", "complete", "append"])'):
            assert added in diff, added
        # The replayed edits changed nothing on agent 1's code; only agent 1's own tool could add this entry.
        assert changed_files(run.diff(2)) == {"CHANGELOG.md"}
        assert "+Written with the append tool." in run.diff(2)

        # The same task script: agent 0 has no append tool and writes nothing, agent 1 solves the "ok" tasks.
        assert scores(run, 0) == {"alpha": 0.0, "beta": 0.0, "gamma": 0.0}
        assert scores(run, 1) == {"alpha": 1.0, "beta": 1.0, "gamma": 0.0}
        assert {e.status for e in run.evaluations(0) + run.evaluations(1)} == {"done"}
        for evaluation in run.scored(0) + run.scored(1):
            assert evaluation.cost_usd == pytest.approx(COST_PER_PROBLEM)
            assert problem_utility(evaluation, weights) == pytest.approx(
                0.5 * evaluation.score + 0.25 * (1 - evaluation.cost_usd / 10) + 0.25 * (1 - evaluation.seconds / 300))
        utility_0, utility_1 = (version_utility(run.scored(n), weights) for n in (0, 1))
        assert utility_0 is not None and utility_1 is not None
        # Same cost, times of a few seconds: the difference is the score's, 0.5 · 2/3.
        assert utility_1 - utility_0 == pytest.approx(0.5 * 2 / 3, abs=0.01)
        assert set(scores(run, 2)) in ({"alpha", "beta"}, {"alpha", "beta", "gamma"})
        assert all(scores(run, 2)[name] == 1.0 for name in ("alpha", "beta"))


#: Each iteration's meta agent breaks the agent in another way (`SICA_AGENT_PROBLEM_ID` names the iteration).
BREAK_BY_ITERATION = """\
case "$SICA_AGENT_PROBLEM_ID" in
  */iteration-1) rm sica_agent/__main__.py ;;
  */iteration-2) printf 'def test_new_behaviour():\\n    assert 1 + 1 == 3\\n' > tests/test_a_new.py ;;
  */iteration-3) printf 'def helper(:\\n    pass\\n' > sica_agent/scratch.py ;;
esac
echo "broke it for $SICA_AGENT_PROBLEM_ID"
"""


def test_broken_changes_are_recorded_invalid_never_evaluated_nor_selected(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok"})
    write_improve_config(tmp_path, task_script=SOLVE_SCRIPT,
                         meta_script=[call("run", command=BREAK_BY_ITERATION), call("complete", summary="changed")])
    lines = run_loop(tmp_path, iterations=3)

    # Were the invalid versions candidates, the `sica` policy would take the most recent one as base.
    assert lines[1].startswith("iteration 1: agent-1 from agent-0 by agent-0 · invalid: its entry point "
                               "sica_agent/__main__.py is missing · $"), lines[1]
    assert lines[2].startswith("iteration 2: agent-2 from agent-0 by agent-0 · invalid: its own tests fail"), lines[2]
    assert "test_a_new.py" in lines[2] and "assert (1 + 1) == 3" in lines[2]
    # A syntax error in a module nothing imports: it imports and its tests pass, but no snapshot of it compiles.
    assert lines[3].startswith("iteration 3: agent-3 from agent-0 by agent-0 · invalid: it does not compile"), lines[3]
    assert "scratch.py" in lines[3]
    assert len(lines) == 4

    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        versions = run.versions()
        assert [(v.number, v.parent, v.state) for v in versions] == [
            (0, None, "valid"), (1, 0, "invalid"), (2, 0, "invalid"), (3, 0, "invalid")]
        for version, line in zip(versions[1:], lines[1:], strict=True):
            assert version.invalid_reason and f"invalid: {version.invalid_reason}" in line
            assert run.evaluations(version.number) == []
        assert "deleted file mode 100644" in run.diff(1) and changed_files(run.diff(1)) == {"sica_agent/__main__.py"}
        assert changed_files(run.diff(2)) == {"tests/test_a_new.py"}
        assert changed_files(run.diff(3)) == {"sica_agent/scratch.py"}
        assert scores(run, 0) == {"alpha": 1.0, "beta": 1.0}  # evaluated once, at the start


def escape_attempts(host: Path, run_folder: Path, host_tmp: Path) -> str:
    """A shell script run by the meta agent: writes outside its copy, each attempt's exit status reported in a file
    of the copy (and a failure of agent 0 the archive view shows, copied in); links planted in the copy to files of the host; in iteration 2, pyproject.toml linked to
    /dev/zero (the harness must not read that on the host)."""
    return f"""\
report=escape-report.txt
archive=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | sed -n '/^--archive$/{{n;p;}}')
test -d "$archive"; echo "archive-found: $?" > $report
(echo pwned >> "$archive/versions.md") 2>/dev/null; echo "archive-versions: $?" >> $report
(touch "$archive/planted") 2>/dev/null; echo "archive-new-file: $?" >> $report
cp "$archive"/agent-0/failures/*.md seen-failure.md
(echo pwned > {run_folder}/planted) 2>/dev/null; echo "run-folder: $?" >> $report
(echo pwned >> {run_folder}/run.sqlite) 2>/dev/null; echo "run-db: $?" >> $report
(echo pwned >> {host}/notes.txt) 2>/dev/null; echo "host-file: $?" >> $report
(echo pwned > ../escaped.txt) 2>/dev/null; echo "parent: $?" >> $report
(echo pwned > {host_tmp}) 2>/dev/null; echo "tmp: $?" >> $report
ln -sfn {host}/secret.py sica_agent/notes.py
ln -sfn {host}/notes.txt description.txt
ln -sfn {host}/notes.txt CHANGELOG.md
(mkdir -p {host} && echo pwned >> sica_agent/notes.py && echo pwned >> description.txt) 2>/dev/null
echo "through-links: $?" >> $report
case "$SICA_AGENT_PROBLEM_ID" in */iteration-2) ln -sfn /dev/zero pyproject.toml ;; esac
cat $report
"""


#: The evaluated agents' task model looks for the host's secret in the compiled snapshot of the agent's code.
PROBE_SCRIPT = [
    call("run", command='cat "$PYTHONPATH"/sica_agent/__pycache__/notes.*.pyc "$PYTHONPATH"/sica_agent/notes.py '
                        '> done.txt 2>/dev/null; true'),
    call("complete", summary="looked"),
]


def test_a_meta_agent_cannot_write_outside_its_copy_and_its_links_never_bring_host_files_in(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.py").write_text('KEY = "hunter2-host-secret"\n')
    (host / "secret.py").chmod(0o600)
    (host / "notes.txt").write_text("a file of the host\n")
    host_tmp = Path("/tmp") / f"sica-escape-{uuid.uuid4().hex}"
    run_folder = tmp_path / "runs" / "r1"
    probe = tmp_path / "tasks" / "probe"
    probe.mkdir(parents=True)
    (probe / "task.md").write_text("Look around.\n")
    (probe / "build.sh").write_text('mkdir -p "$1" && echo start > "$1/README"\n')
    (probe / "check.sh").write_text('grep -aq hunter2 "$1/done.txt"\n')  # passes iff the secret leaked
    write_improve_config(tmp_path, task_script=PROBE_SCRIPT, meta_script=[
        call("run", command=escape_attempts(host, run_folder, host_tmp)),
        call("create", path="../outside.txt", content="pwned\n"),
        call("create", path=str(host / "notes.txt"), content="pwned\n"),
        call("complete", summary="tried to leave the copy"),
    ])
    lines = run_loop(tmp_path, iterations=2)

    # A version is its own files: links out of its folder (on the host they reach the host's files) make it
    # invalid, however it would have fared; it is kept in the archive, links as links, for the lineage.
    assert lines[1].startswith("iteration 1: agent-1 from agent-0 by agent-0 · invalid: its files hold links out "
                               f"of its folder (CHANGELOG.md -> {host}/notes.txt, description.txt -> "
                               f"{host}/notes.txt, sica_agent/notes.py -> {host}/secret.py)"), lines[1]
    assert lines[2].startswith("iteration 2: agent-2 from agent-0 by agent-0 · invalid: its files hold links out "
                               "of its folder (") and "pyproject.toml -> /dev/zero" in lines[2], lines[2]
    assert (host / "secret.py").read_text() == 'KEY = "hunter2-host-secret"\n'
    assert (host / "secret.py").stat().st_mode & 0o777 == 0o600
    assert (host / "notes.txt").read_text() == "a file of the host\n"
    assert sorted(p.name for p in host.iterdir()) == ["notes.txt", "secret.py"]
    assert not host_tmp.exists()
    assert "planted" not in os.listdir(run_folder)

    with Run.open(run_folder) as run:  # a writer's open checks the archive and settles leftovers: none
        assert run.resume_cleanup() == []
        assert [(v.number, v.parent, v.state) for v in run.versions()] == [
            (0, None, "valid"), (1, 0, "invalid"), (2, 0, "invalid")]
        agent_1 = run.version(1)
        # description.txt and CHANGELOG.md are links: never read through, so the meta agent's summary stands in.
        assert agent_1.description == agent_1.change_log == "task complete: tried to leave the copy"
        diff = run.diff(1)
        assert changed_files(diff) == {"CHANGELOG.md", "description.txt", "escape-report.txt", "seen-failure.md",
                                       "sica_agent/notes.py"}
        assert "new file mode 120000" in diff and f"+{host}/secret.py" in diff
        assert "hunter2" not in diff and "a file of the host" not in diff
        code = run.checkout(1, tmp_path / "agent-1")
        assert os.readlink(code / "sica_agent" / "notes.py") == f"{host}/secret.py"
        assert os.readlink(code / "description.txt") == f"{host}/notes.txt"
        # The view showed the meta agent how agent 0 failed the probe: its statement, end, calls and how it was
        # scored (never what the check printed).
        failure = (code / "seen-failure.md").read_text()
        for part in ("(taskdir:", "score 0.000 · done", "## Problem\n\nLook around.",
                     "## How it ended\n\ndone: task complete: looked", "1. run cat ", "## How it was scored"):
            assert part in failure, (part, failure)
        report = dict(line.split(": ") for line in (code / "escape-report.txt").read_text().splitlines())
        # Read-only or absent inside the sandbox; /tmp and the links' targets are the sandbox's own, not the host's.
        assert report == {"archive-found": "0", "archive-versions": "1", "archive-new-file": "1", "run-folder": "1",
                          "run-db": "1", "host-file": "1", "parent": "1", "tmp": "0", "through-links": "0"}
        # Agent 0 was evaluated on the probe: its snapshot holds no trace of the host's secret.
        assert scores(run, 0) == {"probe": 0.0} and run.evaluations(0)[0].status == "done"
        assert run.evaluations(1) == [] and run.evaluations(2) == []
        assert "pyproject.toml" in changed_files(run.diff(2))
    with sqlite3.connect(f"file:{run_folder / 'run.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    fsck = subprocess.run(["git", f"--git-dir={run_folder / 'archive.git'}", "fsck", "--strict"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1"})
    assert fsck.returncode == 0, fsck.stderr
