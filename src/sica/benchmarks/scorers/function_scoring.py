"""The harness's side of a function check (HumanEval, LiveCodeBench): run `function_checker.py` sandboxed on a
copy of the final tree with its spec (the hidden tests and a fresh nonce) on standard input, so they are in no
file the code under test can name, and read its verdict. Under bwrap the checker gives the candidate a sandbox
of its own (`own_sandbox`): bwrap's init in the harness's sandbox can be traced by the sandbox user.

A pass needs evidence the code under test cannot produce: the checker exited 0 and printed a verdict line with
this attempt's nonce saying `pass`. A verdict line with another nonce, or the checker killed by a signal that
only another process sends (the candidate is the only other process in the sandbox; the harness's own stops end
as `timeout` or `killed`), is tampering."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from sica.benchmarks.base import Score, output_tail, run_checks
from sica.benchmarks.scorers import candidate_runner, function_checker, plain_data
from sica.sandbox import Sandbox, SandboxResult

#: The scripts the sandbox runs, beside each other in the hidden folder (they also make up the fingerprint).
SCRIPTS = tuple(Path(str(module.__file__)) for module in (function_checker, candidate_runner, plain_data))
#: Signals the checker never sends itself, and that neither a limit nor the harness delivers to it.
SENT_SIGNALS = frozenset(
    {
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGKILL,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
        signal.SIGTERM,
    }
)


def run_function_check(sandbox: Sandbox, final_tree: Path, spec: dict[str, Any], *, wall_s: float) -> Score:
    """Score `final_tree` with the checker in the given mode (see function_checker.py for the spec)."""
    nonce = secrets.token_hex(16)
    given = json.dumps({**spec, "nonce": nonce, "own_sandbox": sandbox.name == "bwrap"}).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="sica-function-check-") as scratch:
        hidden = Path(scratch)
        for script in SCRIPTS:
            shutil.copyfile(script, hidden / script.name)
        checker = hidden / Path(str(function_checker.__file__)).name
        result = run_checks(
            sandbox,
            final_tree,
            hidden,
            lambda tree: ("python3", "-I", "-B", str(checker), str(tree)),
            wall_s=wall_s,
            stdin=given,
        )
    return verdict_score(result, nonce)


def verdict_score(result: SandboxResult, nonce: str) -> Score:
    """The score the checker's run shows: 1 only for its own passing verdict (see the module's doc)."""
    verdicts = [
        line.split(" ", 3) for line in result.stdout.splitlines() if line.startswith(function_checker.VERDICT + " ")
    ]
    if any(len(verdict) < 3 or verdict[1] != nonce for verdict in verdicts):
        return Score.tampering("a verdict line the checker did not write (not this attempt's nonce)")
    if result.ending == "signal" and result.signal in SENT_SIGNALS:
        return Score.tampering(
            f"the checker was killed by signal {result.signal}, which only the code under test could send"
        )
    if not verdicts:
        return Score(0.0, f"the checker gave no verdict ({result.describe()}): {output_tail(result.stderr, 200)}")
    _, _, outcome, *summary = verdicts[-1]
    said = summary[0] if summary else outcome
    if outcome == "pass" and result.ok:
        return Score(1.0, said)
    return Score(0.0, said if outcome != "pass" else f"the checker {result.describe()} after its verdict")
