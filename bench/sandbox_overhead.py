#!/usr/bin/env python
"""Start-to-exit time of `true` and of `python3 -c pass` under each sandbox backend, against no sandbox.

Each cell is one way of running one command, timed from just before the call to just after it returns:

* no sandbox: `subprocess.run([...])` straight from this process (the baseline of every ratio);
* bwrap, bare command line: `BwrapSandbox().argv(spec, home_mb=...)` run with `subprocess.run`, as this process's
  user (root here: bwrap then sets the namespaces up with privileges, without a user namespace), with no privilege
  drop, rlimits or cgroups;
* bwrap, + prlimit, setpriv: that command line under `prlimit ... -- setpriv --reuid=65534 ... --` (setpriv only
  when root), as `BwrapSandbox.run` launches it, but without cgroups; plain blocking `subprocess.run`;
* bwrap, + cgroups (launcher): everything `BwrapSandbox.run` launches (as root: `sh -c 'echo $$ > <cgroups> && exec
  prlimit ... -- setpriv ... -- bwrap ...'`), the run's cgroups created before and removed after with `RunCgroup`
  as it does; plain blocking `subprocess.run`, so without its Python around the process (path checks, chown,
  output files, wall-time wait, reaping). Skipped where the backend uses no cgroups. These two rows mirror
  `BwrapSandbox.run` at the time of writing; the next row is the real thing;
* bwrap, `Sandbox.run`: `open_sandbox("bwrap").run(SandboxSpec(...))`, the real API;
* podman, `Sandbox.run`: `open_sandbox("podman").run(SandboxSpec(...))`; a run takes ~0.4 s, so these cells run
  `--podman-runs` times (20), spread evenly over the rounds, to keep the default run under a minute;
* none, `Sandbox.run`: `open_sandbox("none", allow_unsafe=True).run(SandboxSpec(...))`; its warning, printed on
  stderr each run, is silenced (noted once in the report). Any other backend in `sica.sandbox.BACKENDS` gets a
  `Sandbox.run` row too.

No `subprocess.run` timed here has a `timeout`: with one, `Popen.wait` polls with sleeps of 1, 2, 4 ... 50 ms and
rounds short runs up (which `Sandbox.run`'s wall-time wait does, and is part of what it costs). Sandboxed runs get a
world-traversable workdir (`tempfile.mkdtemp` under /tmp, mode 0755) and the default `Limits` but a 10 s wall time. Every cell is first run once to check that it works (a backend or cell that cannot run is
skipped, saying why), then `--warmup` times unmeasured, then `--runs` times measured; the rounds interleave all cells,
in an order shuffled each round (`--seed`), so that drift in the machine's speed, and whatever one run leaves behind
for the next, falls on every cell alike. Reported: median and p90 in ms, the median's ratio to the no-sandbox median
of the same command, and their difference. `--budget-s` stops the measured rounds early (saying so) to bound the
runtime. The exit status is 0 (2 if even the baseline cannot run).

    .venv/bin/python bench/sandbox_overhead.py                  # 50 runs per cell, about 35-45 s on 2 cores
    .venv/bin/python bench/sandbox_overhead.py --runs 200 --budget-s 300 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sica.sandbox import BACKENDS, Limits, Sandbox, SandboxError, SandboxSpec, open_sandbox
from sica.sandbox.bwrap import BwrapSandbox
from sica.sandbox.mounts import SANDBOX_UID, drops_to_sandbox_uid
from sica.sandbox.cgroups import CGROUP_ROOT, RunCgroup
from sica.sandbox.process import LAUNCHER_ENVIRONMENT

PYTHON = "/usr/bin/python3"
COMMANDS: dict[str, tuple[str, ...]] = {"true": ("true",), "python3 -c pass": (PYTHON, "-c", "pass")}
LIMITS = Limits(wall_s=10.0)
TIMEOUT_S = 10.0

BASELINE = "no sandbox (subprocess.run)"
BWRAP_BARE = "bwrap: bare command line"
BWRAP_LIMITED = "bwrap: + prlimit, setpriv"
BWRAP_CHAIN = "bwrap: + cgroups (launcher)"
BWRAP_RUN = "bwrap: Sandbox.run"
NONE_RUN = "none: Sandbox.run"
PODMAN_RUN = "podman: Sandbox.run"
METHODS = (BASELINE, BWRAP_BARE, BWRAP_LIMITED, BWRAP_CHAIN, BWRAP_RUN, PODMAN_RUN, NONE_RUN)


class CellFailed(Exception):
    """One run of a cell did not exit 0."""


@dataclass
class Cell:
    method: str
    command: str
    run: Callable[[], None]
    runs: int | None = None  # measured runs wanted, when fewer than --runs (spread evenly over the rounds)
    samples_ms: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def time_once(self) -> float | None:
        started = time.perf_counter_ns()
        try:
            self.run()
        except (CellFailed, SandboxError, OSError, subprocess.SubprocessError) as exc:
            self.failures += 1
            self.first_failure = self.first_failure or f"{type(exc).__name__}: {exc}"
            return None
        return (time.perf_counter_ns() - started) / 1e6


def check_completed(completed: subprocess.CompletedProcess[bytes]) -> None:
    if completed.returncode != 0:
        stderr = (completed.stderr or b"").decode(errors="replace").strip()
        raise CellFailed(f"exit code {completed.returncode}" + (f": {stderr[-300:]}" if stderr else ""))


def direct(argv: list[str], *, quiet: bool = False, **kwargs: Any) -> Callable[[], None]:
    """`subprocess.run(argv)`, a plain blocking wait. `quiet` (the one-off check) captures its output, to report a
    failure, and sets a timeout: only there, since a `timeout` makes `Popen.wait` poll with growing sleeps (1, 2,
    4 ... 50 ms), which would round the times measured up."""
    def run() -> None:
        if quiet:
            check_completed(subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S, **kwargs))
        else:
            check_completed(subprocess.run(argv, **kwargs))
    return run


def launcher_chain(bwrap: BwrapSandbox, spec: SandboxSpec, *, cgroups: bool,
                   quiet: bool = False) -> Callable[[], None]:
    """What `BwrapSandbox.run` launches (cgroups if `cgroups`, prlimit, setpriv, bwrap), with a plain blocking
    wait; the cgroups are created before and removed after, as `BwrapSandbox.run` does."""
    def run() -> None:
        limits = spec.limits
        cgroup = RunCgroup.create(limits.memory_mb, limits.processes) if cgroups else None
        try:
            direct(bwrap.launcher(spec, cgroup), quiet=quiet, stdin=subprocess.DEVNULL, env=LAUNCHER_ENVIRONMENT,
                   start_new_session=True)()
        finally:
            if cgroup is not None:
                cgroup.remove()
    return run


class Silenced:
    """Swallows what the `none` backend prints on stderr each run; keeps the first line to note it once."""

    def __init__(self) -> None:
        self.first = ""
        self.count = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        buffer = io.StringIO()
        with contextlib.redirect_stderr(buffer):
            yield
        text = buffer.getvalue().strip()
        if text:
            self.count += 1
            self.first = self.first or text.splitlines()[0]


def through(sandbox: Sandbox, spec: SandboxSpec, silenced: Silenced | None = None) -> Callable[[], None]:
    def run() -> None:
        with silenced() if silenced else contextlib.nullcontext():
            result = sandbox.run(spec)
        if not result.ok:
            stderr = result.stderr.strip()
            raise CellFailed(result.describe() + (f": {stderr[-300:]}" if stderr else ""))
    return run


def world_traversable_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def cgroup_version() -> str:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return "v2"
    if (CGROUP_ROOT / "memory").is_dir():
        return "v1"
    return "none found"


def tool_version(path: str | None) -> str:
    if path is None:
        return "not installed"
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"


def build_cells(workdirs: dict[str, Path], silenced: Silenced, skipped: list[dict[str, str]],
                podman_runs: int) -> tuple[list[Cell], dict[str, str]]:
    """All cells that pass their one-off check; `skipped` gets the others, with the reason. Also the notes
    on how the bwrap cells ran (cgroups created or not)."""
    notes: dict[str, str] = {}
    candidates: list[tuple[Cell, Callable[[], None]]] = []  # (cell, its one-off check)
    commands = dict(COMMANDS)
    if not os.access(PYTHON, os.X_OK):
        skipped.append({"method": "*", "command": "python3 -c pass", "reason": f"{PYTHON} is not executable"})
        del commands["python3 -c pass"]

    for name, command in commands.items():
        candidates.append((Cell(BASELINE, name, direct(list(command))), direct(list(command), quiet=True)))

    try:
        bwrap: BwrapSandbox | None = BwrapSandbox()
        sandbox_bwrap = open_sandbox("bwrap")
    except SandboxError as exc:
        bwrap = None
        skipped.append({"method": "bwrap: every row", "command": "*", "reason": str(exc)})
    if bwrap is not None:
        probe = RunCgroup.create(LIMITS.memory_mb, LIMITS.processes) if drops_to_sandbox_uid() else None
        if probe is not None:
            probe.remove()
        else:
            skipped.append({"method": BWRAP_CHAIN, "command": "*", "reason": "the bwrap backend uses no cgroups here "
                            "(not root, or cgroups cannot be created): the row above is its whole launcher"})
        notes["bwrap"] = (f"as uid {SANDBOX_UID} via setpriv, rlimits via prlimit, "
                          + ("per-run cgroups (" + cgroup_version() + ")" if probe else "no cgroups (cannot create)")
                          if drops_to_sandbox_uid() else "as this (unprivileged) user, rlimits via prlimit, no cgroups")
        for name, command in commands.items():
            spec = SandboxSpec(command=command, workdir=workdirs["bwrap"], limits=LIMITS)
            argv = bwrap.argv(spec, home_mb=LIMITS.tmp_mb)
            candidates.append((Cell(BWRAP_BARE, name, direct(argv, stdin=subprocess.DEVNULL)),
                               direct(argv, quiet=True, stdin=subprocess.DEVNULL)))
            candidates.append((Cell(BWRAP_LIMITED, name, launcher_chain(bwrap, spec, cgroups=False)),
                               launcher_chain(bwrap, spec, cgroups=False, quiet=True)))
            if probe is not None:
                candidates.append((Cell(BWRAP_CHAIN, name, launcher_chain(bwrap, spec, cgroups=True)),
                                   launcher_chain(bwrap, spec, cgroups=True, quiet=True)))
            run = through(sandbox_bwrap, spec)
            candidates.append((Cell(BWRAP_RUN, name, run), run))

    for backend in (b for b in BACKENDS if b != "bwrap"):  # bwrap above; `none` and any other through the API
        method = f"{backend}: Sandbox.run"
        try:
            sandbox = open_sandbox(backend, allow_unsafe=True)
        except SandboxError as exc:
            skipped.append({"method": method, "command": "*", "reason": str(exc)})
            continue
        for name, command in commands.items():
            spec = SandboxSpec(command=command, workdir=workdirs[backend], limits=LIMITS)
            run = through(sandbox, spec, silenced if backend == "none" else None)
            cell = Cell(method, name, run, runs=podman_runs if backend == "podman" else None)
            candidates.append((cell, run))
        runtime = getattr(sandbox, "runtime", None)
        if backend == "podman" and runtime:
            notes["podman"] = "with " + " ".join(runtime)

    cells = []
    for cell, check in candidates:
        try:
            check()
        except (CellFailed, SandboxError, OSError, subprocess.SubprocessError) as exc:
            skipped.append({"method": cell.method, "command": cell.command,
                            "reason": f"{type(exc).__name__}: {exc}"})
            continue
        cells.append(cell)
    return cells, notes


def measure(cells: list[Cell], runs: int, warmup: int, budget_s: float, seed: int) -> tuple[int, bool]:
    """Warm-up rounds, then measured rounds, each running every cell once in a freshly shuffled order (so that no
    cell always follows the same one). Returns the measured rounds done and whether the budget cut them short."""
    shuffler = random.Random(seed)
    for _ in range(warmup):
        for cell in shuffled(cells, shuffler):
            with contextlib.suppress(CellFailed, SandboxError, OSError, subprocess.SubprocessError):
                cell.run()
    started = time.monotonic()
    for round_ in range(runs):
        if round_ >= 2 and time.monotonic() - started > budget_s:
            return round_, True
        gc.collect()
        for cell in shuffled(cells, shuffler):
            # A cell with fewer runs wanted (n) runs in the rounds where round * n // runs steps up.
            n = min(cell.runs or runs, runs)
            if (round_ + 1) * n // runs == round_ * n // runs:
                continue
            sample = cell.time_once()
            if sample is not None:
                cell.samples_ms.append(sample)
    return runs, False


def shuffled(cells: list[Cell], shuffler: random.Random) -> list[Cell]:
    order = list(cells)
    shuffler.shuffle(order)
    return order


def summarize(cells: list[Cell]) -> list[dict[str, Any]]:
    base = {c.command: statistics.median(c.samples_ms) for c in cells if c.method == BASELINE and c.samples_ms}
    figures = []
    for cell in cells:
        xs = cell.samples_ms
        row: dict[str, Any] = {"method": cell.method, "command": cell.command, "runs": len(xs),
                               "failures": cell.failures, "first_failure": cell.first_failure or None}
        if xs:
            median = statistics.median(xs)
            p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) >= 2 else xs[0]
            row.update(median_ms=median, p90_ms=p90, min_ms=min(xs), max_ms=max(xs))
            if cell.command in base:
                row.update(ratio=median / base[cell.command], added_ms=median - base[cell.command])
        row["samples_ms"] = [round(x, 4) for x in xs]
        figures.append(row)
    return figures


def print_table(figures: list[dict[str, Any]], commands: list[str]) -> None:
    by_key = {(f["method"], f["command"]): f for f in figures}
    ordered = [*METHODS, *(f["method"] for f in figures if f["method"] not in METHODS)]
    methods = [m for m in dict.fromkeys(ordered) if any((m, c) in by_key for c in commands)]
    sub = ("median", "p90", "x base", "+ms")
    label_width = max(len("method"), *(len(m) for m in methods))
    col = 8
    group = len(sub) * col + (len(sub) - 1)
    line = (" " * label_width + "".join(f"  {c:^{group}}" for c in commands)).rstrip()
    print(line)
    print(f"{'method':<{label_width}}" + "".join("  " + " ".join(f"{s:>{col}}" for s in sub) for _ in commands))
    print("-" * (label_width + len(commands) * (group + 2)))
    for method in methods:
        cells = []
        for command in commands:
            f = by_key.get((method, command))
            if f is None or "median_ms" not in f:
                cells.append(" ".join(f"{'-':>{col}}" for _ in sub))
                continue
            ratio = f"{f['ratio']:.2f}x" if "ratio" in f else "-"
            added = f"{f['added_ms']:+.2f}" if "added_ms" in f else "-"
            cells.append(" ".join((f"{f['median_ms']:>{col}.2f}", f"{f['p90_ms']:>{col}.2f}", f"{ratio:>{col}}",
                                   f"{added:>{col}}")))
        print(f"{method:<{label_width}}" + "".join("  " + c for c in cells))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="measured runs per cell")
    parser.add_argument("--podman-runs", type=int, default=20,
                        help="measured runs of the podman cells (~0.4 s each), spread evenly over the rounds")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per cell first")
    parser.add_argument("--budget-s", type=float, default=45.0,
                        help="stop the measured rounds after this many seconds (at least 2 rounds run)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the order of the cells in each round")
    parser.add_argument("--json", metavar="PATH", help="also write all figures (and every sample) as JSON")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.podman_runs < 1 or args.warmup < 0 or args.budget_s <= 0:
        parser.error("--runs must be at least 2, --podman-runs at least 1, --warmup at least 0, --budget-s positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    load_before = os.getloadavg()
    workdirs = {backend: world_traversable_dir(f"sica-bench-{backend}-") for backend in BACKENDS}
    silenced = Silenced()
    skipped: list[dict[str, str]] = []
    try:
        cells, notes = build_cells(workdirs, silenced, skipped, args.podman_runs)
        if not any(c.method == BASELINE for c in cells):
            print("benchmark could not run: the no-sandbox baseline failed: "
                  + "; ".join(s["reason"] for s in skipped if s["method"] == BASELINE), file=sys.stderr)
            return 2
        rounds, cut_short = measure(cells, args.runs, args.warmup, args.budget_s, args.seed)
    finally:
        for path in workdirs.values():
            shutil.rmtree(path, ignore_errors=True)
    figures = summarize(cells)
    commands = [c for c in COMMANDS if any(f["command"] == c for f in figures)]

    load_after = os.getloadavg()
    environment = {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                   "loadavg_1min_before": load_before[0], "loadavg_1min_after": load_after[0],
                   "commands_python": PYTHON, "bwrap": tool_version(shutil.which("bwrap")),
                   "podman": tool_version(shutil.which("podman")), "euid": os.geteuid(),
                   "cgroups": cgroup_version(), **{f"notes_{k}": v for k, v in notes.items()}}
    print()
    fewer = sorted({f"{c.method.split(':')[0]} {len(c.samples_ms) + c.failures}" for c in cells if c.runs})
    print(f"sandbox overhead: start-to-exit time of each command, {rounds} measured runs per cell"
          + (f" ({', '.join(fewer)})" if fewer else "") + f" after {args.warmup} warm-up(s), all cells "
          "interleaved (order shuffled each round)" + (f" - cut short by --budget-s {args.budget_s:g}" if cut_short
                                                       else ""))
    print(f"Linux {environment['kernel']}, {environment['cpus']} CPUs, euid {environment['euid']}, "
          f"{environment['bwrap']}, {environment['podman']}, cgroups {environment['cgroups']}; commands: true, "
          f"{PYTHON} -c pass; "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if "bwrap" in notes:
        print(f"bwrap backend runs {notes['bwrap']}" + (f"; podman backend runs {notes['podman']}"
                                                          if "podman" in notes else ""))
    print()
    print_table(figures, commands)
    print()
    print("ms; x base = median / the no-sandbox median of the same command; +ms = median minus that median")
    legends = {
        BWRAP_BARE: f"BwrapSandbox().argv(...) run directly by subprocess.run, as euid {os.geteuid()}: no setpriv, "
                    "prlimit or cgroups",
        BWRAP_LIMITED: f"the same under prlimit and setpriv (to uid {SANDBOX_UID} when root), as BwrapSandbox.run "
                       "launches it, but no cgroups; plain blocking subprocess.run, no timeout",
        BWRAP_CHAIN: "all BwrapSandbox.run launches: also its cgroups created, joined (sh -c 'echo $$ > ...'), "
                     "removed; plain blocking subprocess.run, no timeout",
        BWRAP_RUN: "the real API; over the row above it adds its Python (path checks, chown, output files, "
                   "wall-time wait on a pidfd, reaping the whole tree)",
    }
    for method, legend in legends.items():
        if any(f["method"] == method for f in figures):
            print(f"{method}: {legend}")
    if silenced.count:
        print(f"{NONE_RUN}: its stderr warning was silenced ({silenced.count} times): {silenced.first!r}")
    for cell in cells:
        if cell.failures:
            print(f"note: {cell.method} / {cell.command}: {cell.failures} failed run(s), left out; first: "
                  f"{cell.first_failure}")
    for skip in skipped:
        print(f"skipped: {skip['method']} / {skip['command']}: {skip['reason']}")
    wall = time.monotonic() - started
    print(f"wall time: {wall:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds, "cut_short": cut_short,
                                               "environment": environment, "cells": figures, "skipped": skipped,
                                               "none_warning": silenced.first or None, "wall_s": wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
