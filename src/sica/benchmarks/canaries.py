"""The harness's side of the trusted pytest runner (`pytest_report.py`): the secrets of one scoring run (a nonce,
the canaries' seed, how many canaries and which tests they should copy), given on the runner's standard input,
and the reading of its output, which the code under test shares a process with and may have written to.

A run's stdout must hold what only the trusted runner writes: a start line (written before any code of the tree
runs) and at most one report, signed with the nonce (a runner given no secrets marks its report unsigned: such a
report never counts); every canary in the report failed or was skipped (a canary
runs its real twin and then fails, so a passing one means the report was rewritten), as many canaries as asked
for (or as there were tests to copy), and no more passing tests than were collected. Anything else is evidence of
tampering, `Tampered`; a run with no report simply did not finish."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sica.benchmarks.pytest_report import REPORT, START, UNSIGNED, sign

_OUTCOMES = {"passed", "failed", "skipped"}


class Tampered(Exception):
    """Evidence that the code under test attacked the scorer; one line, quoting nothing secret."""


@dataclass(frozen=True)
class RunnerSecrets:
    """What one scoring run's runner gets on standard input: the nonce signing its report, the seed placing and
    choosing the canaries, how many canaries, and which tests they copy first (`twins`, node ids)."""

    nonce: str
    seed: int
    canaries: int
    twins: tuple[str, ...] = ()

    @classmethod
    def new(cls, canaries: int = 0, twins: tuple[str, ...] = ()) -> RunnerSecrets:
        """Fresh secrets (from the system's random source): different in every scoring run."""
        return cls(secrets.token_hex(16), secrets.randbits(62), canaries, twins)

    def stdin(self) -> bytes:
        return json.dumps(
            {"nonce": self.nonce, "seed": self.seed, "canaries": self.canaries, "twins": list(self.twins)}
        ).encode()


@dataclass(frozen=True)
class RunnerOutput:
    """What the trusted runner said: its start line's data (None when it never started), whether a runner
    started without the secrets (the check ran it twice, or after something else read them), and the verified
    report (None when the run did not finish)."""

    started: dict[str, Any] | None
    without_secrets: bool
    report: dict[str, Any] | None


def read_runner_output(stdout: str, given: RunnerSecrets) -> RunnerOutput:
    """The start line and verified report of a run given `given` on standard input; `Tampered` when the output
    holds what the trusted runner cannot have written."""
    starts, reports = [], []
    for line in stdout.splitlines():
        if line.startswith(START):
            try:
                started = json.loads(line.removeprefix(START))
            except ValueError:
                raise Tampered("a test runner start line the trusted runner did not write") from None
            if not isinstance(started, dict):
                raise Tampered("a test runner start line the trusted runner did not write")
            starts.append(started)
        elif line.startswith(REPORT) and not line.startswith(REPORT + UNSIGNED + " "):
            reports.append(line.removeprefix(REPORT))
    with_secrets = [started for started in starts if started.get("secrets") is True]
    if len(with_secrets) > 1:
        raise Tampered("more than one test run had the harness's secrets (only one can read them)")
    verified = [_verified(report, given) for report in reports]
    if len(verified) > 1:
        raise Tampered("more than one test report")
    if verified and not with_secrets:
        raise Tampered("a signed test report without the start of its run")
    started = with_secrets[0] if with_secrets else (starts[0] if starts else None)
    return RunnerOutput(started, len(with_secrets) < len(starts), verified[0] if verified else None)


def _verified(line: str, given: RunnerSecrets) -> dict[str, Any]:
    """A report line's data once its signature and shape are checked, and its canaries."""
    signature, _, body = line.partition(" ")
    if not hmac.compare_digest(signature, sign(given.nonce, body)):
        raise Tampered("a test report the trusted runner did not sign")
    try:
        report: dict[str, Any] = json.loads(body)
        tests, canaries = report["tests"], report["canaries"]
        collected, candidates = int(report["collected"]), int(report["candidates"])
        if not (
            isinstance(tests, dict)
            and all(outcome in _OUTCOMES for outcome in tests.values())
            and isinstance(canaries, list)
            and isinstance(report["errors"], list)
            and isinstance(report["failures"], dict)
            and isinstance(report["covered"], dict)
            and isinstance(report["required"], list)
            and all(isinstance(t, str) for t in report["required"])
        ):
            raise ValueError
        outcomes = [(str(canary["twin"]), canary["outcome"]) for canary in canaries]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Tampered("a test report of an impossible shape") from None
    passing = sum(outcome == "passed" for outcome in tests.values())
    if passing > collected or len(tests) > collected:
        raise Tampered(
            f"a test report with more tests ({len(tests)}, {passing} passing) than were collected ({collected})"
        )
    if len(outcomes) != min(given.canaries, candidates):
        raise Tampered(
            f"a test report with {len(outcomes)} canary tests where the run had {min(given.canaries, candidates)}"
        )
    for twin, outcome in outcomes:
        if outcome == "passed":
            raise Tampered(f"a canary test (a copy of {twin[:200]} that must fail) was reported as passing")
        if outcome is not None and outcome not in _OUTCOMES:
            raise Tampered("a test report of an impossible shape")
    return report
