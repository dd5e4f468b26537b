"""Run `sica ARGS…` and SIGKILL the process at a chosen point: `python crash.py POINT -- ARGS…`.

Points: `none` (never), `after:S` (S seconds in), `meta` (one second into the first meta step, or as its attempt ends if sooner), `tag` (right after a
version's commit is tagged, before its row in run.sqlite is marked), `record:N` (right after the N-th evaluation
result is recorded in the run). The kill is the process's own SIGKILL: no handler, no clean-up, as a crash.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after_call(owner: Any, name: str, when: Callable[[int], bool]) -> None:
    """Wrap `owner.name` so that the process dies right after its n-th call returns, for the first n with when(n)."""
    original = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if when(calls):
            kill()
        return result

    setattr(owner, name, wrapper)


def arm(point: str) -> None:
    kind, _, argument = point.partition(":")
    if kind == "after":
        threading.Timer(float(argument), kill).start()
    elif kind == "tag":
        from sica.archive.git_store import GitStore

        kill_after_call(GitStore, "tag", lambda n: True)
    elif kind == "record":
        from sica.archive.run import Run

        kill_after_call(Run, "record_evaluation", lambda n: n == int(argument))
    elif kind == "meta":
        from sica.loop import meta_step

        original = meta_step.run_attempt

        async def run_attempt(*args: Any, **kwargs: Any) -> Any:
            threading.Timer(1.0, kill).start()
            await original(*args, **kwargs)
            kill()  # a meta step shorter than a second dies before it is recorded all the same

        meta_step.run_attempt = run_attempt  # type: ignore[assignment]
    elif kind != "none":
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    point, separator, *args = sys.argv[1:]
    assert separator == "--", "usage: crash.py POINT -- SICA_ARGS..."
    arm(point)
    sys.argv = ["sica", *args]
    from sica.cli import main

    main()
