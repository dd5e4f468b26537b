"""The trusted side of a function check: `python3 -I -B function_checker.py TREE`, its spec (JSON) on standard
input. It never imports the code under test: `candidate_runner.py` runs it in another process, and every call
crosses the boundary as plain data (`plain_data.py`), one at a time over pipes, with a time limit; an exception,
a crash, an exit or garbage from the candidate is a failed call, never a pass. Equality is decided here, on
decoded plain values.

Before the candidate exists, this process makes itself non-dumpable, reads its spec (hidden tests, the
per-attempt nonce) from standard input and puts /dev/null in its place: the candidate runs as the same user, and
could otherwise read this process's memory and descriptors through /proc or ptrace. With `own_sandbox` in the
spec (the harness's bwrap sandbox, whose init process the sandbox user can trace, and which holds the standard
input and reports the exit status) the candidate runs in a nested sandbox with its own PID namespace, where it
sees neither. It gets its own pipes; it can neither write to this process's standard output nor learn the
nonce, so the verdict line `sica-verdict NONCE pass|fail SUMMARY` and the exit code (0 iff passed) are this
process's alone.

Spec modes: `humaneval` (`prompt` and `test`: the dataset's check runs here with `candidate` standing for the
remote function), `functional` (LiveCodeBench's LeetCode problems: JSON arguments, one per input line, and the
JSON result) and `stdin` (LiveCodeBench's programs: one run of `solution.py` per test, output compared line by
line). Standard library only (it runs on the sandbox's system Python 3.11).

One module, over 400 lines, because it is the one trusted process of a check: sealing, the nested sandbox, the
call protocol and the three modes all run in it and share `Candidate` and the verdict; what runs elsewhere is
already apart (`candidate_runner.py` in the candidate's process, `plain_data.py` the encoding both use,
`function_scoring.py` the harness's side). Splitting the modes out would add scripts to copy next to the checker
without separating what must be trusted from what must not."""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, NoReturn

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__:
    from sica.benchmarks.scorers import plain_data
else:  # run as a script: its folder (read-only, these scripts only) is on the path, never the tree
    sys.path.insert(0, HERE)
    import plain_data  # type: ignore[import-not-found, no-redef]

VERDICT = "sica-verdict"
RUNNER = os.path.join(HERE, "candidate_runner.py")
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
#: The most a reply line or a program's output may hold.
OUTPUT_CAP = 64 * 1024 * 1024
#: How much of a program's standard error is kept (its end), for the reason of a failure.
ERROR_TAIL = 4096
#: How long a finished program's leftover output is waited for (a helper it left may hold its pipes).
DRAIN_S = 0.5
#: What the candidate's command runs under: its own sandbox (`own_sandbox`), or nothing where the harness's
#: sandbox has no other process to protect (a container, whose init this process is; no sandbox at all).
CANDIDATE_PREFIX: list[str] = []


class CallFailed(BaseException):
    """A call the candidate did not answer with plain data in time. A BaseException, so that no `except
    Exception` in a dataset's check can take it for a passing test."""

    def __init__(self, what: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{what}: {reason}")
        self.reason, self.timed_out = reason, timed_out


class TimedOut(Exception):
    """A LiveCodeBench test over its time limit (the later ones are not run)."""


class IsolationError(Exception):
    """The candidate cannot be given a sandbox of its own here."""


def seal() -> dict[str, Any]:
    """Become non-dumpable, read the spec from standard input, and leave /dev/null in its place."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 or libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    data = sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(os.devnull)
    spec = json.loads(data)
    if not isinstance(spec, dict):
        raise ValueError("the spec is not a JSON object")
    return spec


def _name(text: Any) -> str:
    """A name the candidate sent (an exception's type), safe to quote in one line."""
    return re.sub(r"[^A-Za-z0-9_. ]", "?", str(text))[:80] or "?"


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", errors="replace").strip().splitlines()
    return " ".join(lines[-1].split())[:200] if lines else "(no output)"


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    """Kill a candidate and what it started in its session."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    process.kill()
    process.wait()


def own_sandbox(tree: str) -> list[str]:
    """The command prefix that runs the candidate in a bwrap sandbox of its own inside the harness's: its own
    PID namespace, so that it can name neither this process nor the outer sandbox's init (which the sandbox user
    could trace, and which holds this run's standard input and reports its exit status), and its own user,
    network and IPC namespaces; everything read-only but the tree, with a fresh /tmp and home. Tried once."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise IsolationError("bwrap is not installed")
    prefix = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    home = os.environ.get("HOME", "")
    if home not in ("", "/") and os.path.isdir(home):
        prefix += ["--tmpfs", home]
    prefix += ["--ro-bind", HERE, HERE, "--bind", tree, tree, "--chdir", tree, "--"]
    try:
        tried = subprocess.run(
            [*prefix, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30
        )
    except subprocess.TimeoutExpired:
        raise IsolationError("bwrap did not start in 30 s") from None
    if tried.returncode != 0:
        raise IsolationError(f"bwrap failed: {_last_line(tried.stderr)}")
    return prefix


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"was killed by signal {-code}"
    if CANDIDATE_PREFIX and code > 128:  # bwrap's way of saying its command was killed by a signal
        return f"was killed by signal {code - 128}"
    return f"exited with code {code}"


def _start(mode: str, tree: str, stderr: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*CANDIDATE_PREFIX, sys.executable, "-I", "-B", RUNNER, mode, tree],
        cwd=tree,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    assert process.stdin is not None
    os.set_blocking(process.stdin.fileno(), False)
    return process


def _send(process: subprocess.Popen[bytes], data: bytes) -> bytes:
    """Write what the candidate's standard input takes now; what is left (nothing once it closed it)."""
    assert process.stdin is not None
    try:
        return data[os.write(process.stdin.fileno(), data[:65536]) :]
    except BlockingIOError:
        return data
    except OSError:
        return b""


class Candidate:
    """The code under test in its own process and session, loaded once, answering one call at a time."""

    def __init__(self, tree: str, name: str, prelude: str, method_of: str | None, timeout_s: float) -> None:
        self.process = _start("function", tree, subprocess.DEVNULL)
        self.pending = bytearray()
        self.calls = 0
        self.broken = False
        reply = self._exchange(
            {"load": {"name": name, "prelude": prelude, "method_of": method_of}}, timeout_s, "loading solution.py"
        )
        if reply.get("ready") is not True:
            self._fail("solution.py", f"did not load: {_name(reply.get('load_failed'))}")

    def _fail(self, what: str, reason: str, *, timed_out: bool = False) -> NoReturn:
        self.broken = True
        self.stop()
        raise CallFailed(what, reason, timed_out=timed_out)

    def _exchange(self, message: dict[str, Any], timeout_s: float, what: str) -> dict[str, Any]:
        """Send one request line and read one reply line, within `timeout_s`."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request, deadline = plain_data.dumps(message), time.monotonic() + timeout_s
        from_candidate, ended = self.process.stdout.fileno(), False
        while request or (b"\n" not in self.pending and not ended):
            if len(self.pending) > OUTPUT_CAP:
                self._fail(what, f"answered with more than {OUTPUT_CAP >> 20} MB")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(what, f"over the {timeout_s:g} s time limit", timed_out=True)
            writers = [self.process.stdin.fileno()] if request else []
            readable, writable, _ = select.select([from_candidate], writers, [], remaining)
            if writable:
                request = _send(self.process, request)
            if readable:
                chunk = os.read(from_candidate, 1 << 20)
                self.pending += chunk
                ended = not chunk
                request = b"" if ended else request
        if b"\n" not in self.pending:
            self._fail(what, f"{self._ending()} without answering")
        line, _, rest = bytes(self.pending).partition(b"\n")
        self.pending = bytearray(rest)
        try:
            reply = plain_data.loads(line)
        except plain_data.NotPlainData:
            reply = None
        if not isinstance(reply, dict):
            self._fail(what, "answered with something that is not a reply")
        return reply

    def call(self, timeout_s: float, *arguments: Any, **keywords: Any) -> Any:
        """The candidate's return value for these arguments, decoded as plain data."""
        self.calls += 1
        number, what = self.calls, f"call {self.calls}"
        try:
            request = {
                "call": number,
                "args": [plain_data.encode(a) for a in arguments],
                "kwargs": [[name, plain_data.encode(value)] for name, value in keywords.items()],
            }
        except plain_data.NotPlainData as error:
            raise CallFailed(what, f"the test's arguments are not plain data ({error})") from None
        reply = self._exchange(request, timeout_s, what)
        if reply.get("call") != number or len(reply) != 2:
            self._fail(what, "answered with something that is not its reply")
        if "raised" in reply:
            raise CallFailed(what, f"raised {_name(reply['raised'])}")
        if "unencodable" in reply:
            raise CallFailed(what, f"returned a value of type {_name(reply['unencodable'])}, which is not plain data")
        try:
            return plain_data.decode(reply.get("returned"))
        except (plain_data.NotPlainData, RecursionError):
            self._fail(what, "answered with something that is not plain data")

    def _ending(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "closed its output"
        return _exit_reason(code)

    def stop(self) -> None:
        _kill_session(self.process)


def check_humaneval(spec: dict[str, Any], tree: str) -> tuple[bool, str]:
    """Run the dataset's `check(candidate)` here, the prompt's helpers defined (some tests use them) and the
    function's name and `candidate` calling across."""
    deadline = time.monotonic() + float(spec["check_timeout_s"])
    call_timeout_s = float(spec["call_timeout_s"])

    def limit() -> float:
        return max(0.0, min(call_timeout_s, deadline - time.monotonic()))

    candidate: Candidate | None = None
    try:
        candidate = Candidate(tree, str(spec["entry_point"]), "", None, limit())
        remote = candidate

        def proxy(*arguments: Any, **keywords: Any) -> Any:
            return remote.call(limit(), *arguments, **keywords)

        namespace: dict[str, Any] = {"__name__": "__check__"}
        exec(compile(spec["prompt"], "<prompt>", "exec"), namespace)
        namespace[str(spec["entry_point"])] = proxy  # a test may name the function instead of `candidate`
        exec(compile(spec["test"], "<test>", "exec"), namespace)
        namespace["check"](proxy)
    except CallFailed as failure:
        return False, str(failure)
    except AssertionError:
        return False, f"a test failed (call {candidate.calls if candidate else 0})"
    except Exception as error:
        return False, f"the check raised {type(error).__name__} (call {candidate.calls if candidate else 0})"
    finally:
        if candidate is not None:
            candidate.stop()
    if candidate.calls == 0:
        return False, "the check made no call"
    return True, f"all {candidate.calls} calls passed"


def same_output(got: str, expected: str) -> bool:
    """LiveCodeBench's comparison of a program's output with the expected one: line by line, stripped of
    surrounding whitespace, every line equal or holding the same numbers."""
    got_lines = [line.strip() for line in got.strip().split("\n")]
    expected_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(expected_lines):
        return False
    for mine, theirs in zip(got_lines, expected_lines, strict=True):
        if mine == theirs:
            continue
        try:
            if [Decimal(word) for word in mine.split()] != [Decimal(word) for word in theirs.split()]:
                return False
        except InvalidOperation:
            return False
    return True


class ProgramRun(NamedTuple):
    """How one run of a program ended: its exit status (None: over the time limit), whether it printed more
    than OUTPUT_CAP, its output and the end of its standard error."""

    code: int | None
    flooded: bool
    output: bytes
    errors: bytes


def run_program(tree: str, given: bytes, timeout_s: float) -> ProgramRun:
    """Run `solution.py` with `given` on its standard input. Once it has exited, what it left in its session
    is killed and its pipes are read a moment longer (a helper that escaped the session may hold them)."""
    process = _start("program", tree, subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    output, errors = bytearray(), bytearray()
    streams = {process.stdout.fileno(): output, process.stderr.fileno(): errors}
    deadline, exit_fd, exited = time.monotonic() + timeout_s, os.pidfd_open(process.pid), False
    if not given:
        process.stdin.close()
    try:
        while (streams or not exited) and len(output) <= OUTPUT_CAP:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable, writable, _ = select.select(
                [*streams, *([] if exited else [exit_fd])], [process.stdin] if given else [], [], remaining
            )
            if writable:
                given = _send(process, given)
                if not given:
                    process.stdin.close()
            if exit_fd in readable:
                exited, deadline = True, min(deadline, time.monotonic() + DRAIN_S)
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except OSError:
                    pass
            for fd in [fd for fd in streams if fd in readable]:
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    streams[fd].extend(chunk)
                else:
                    del streams[fd]
            del errors[:-ERROR_TAIL]
    finally:
        os.close(exit_fd)
        _kill_session(process)
    return ProgramRun(process.returncode if exited else None, len(output) > OUTPUT_CAP, bytes(output), bytes(errors))


def stdin_test(tree: str, test: dict[str, Any], timeout_s: float) -> str | None:
    """None if the program's output matches, else why not (TimedOut past the time limit)."""
    run = run_program(tree, str(test["input"]).encode("utf-8"), timeout_s)
    if run.flooded:
        return f"printed more than {OUTPUT_CAP >> 20} MB"
    if run.code is None:
        raise TimedOut()
    if run.code != 0:
        return f"{_exit_reason(run.code)}: {_last_line(run.errors)}"
    return None if same_output(run.output.decode("utf-8", errors="replace"), str(test["output"])) else "wrong answer"


def functional_test(
    spec: dict[str, Any], tree: str, test: dict[str, Any], timeout_s: float, candidate: Candidate | None
) -> tuple[str | None, Candidate | None]:
    """None if the function's result equals the expected one, else why not; and the candidate to reuse (a
    fresh one replaces one that broke)."""
    try:
        arguments = [json.loads(line) for line in str(test["input"]).split("\n")]
        expected = json.loads(str(test["output"]))
    except json.JSONDecodeError:
        return "the dataset's test is not JSON", candidate
    try:
        if candidate is None or candidate.broken:
            candidate = None
            candidate = Candidate(tree, str(spec["func_name"]), str(spec.get("prelude") or ""), "Solution", timeout_s)
        result = candidate.call(timeout_s, *arguments)
    except CallFailed as failure:
        if failure.timed_out:
            raise TimedOut() from None
        return failure.reason if candidate else str(failure), candidate
    try:
        result = json.loads(json.dumps(result))
    except (TypeError, ValueError):
        return "its result is not JSON-serialisable", candidate
    return (None if result == expected else "wrong answer"), candidate


def check_livecodebench(spec: dict[str, Any], tree: str) -> tuple[bool, str]:
    """Every test in order, `k/n tests passed` and the first failure; after a time-out the rest are not run."""
    tests, timeout_s = spec["tests"], float(spec["timeout_s"])
    passed, first_failure = 0, ""
    candidate: Candidate | None = None
    try:
        for number, test in enumerate(tests, start=1):
            try:
                if spec["mode"] == "functional":
                    failure, candidate = functional_test(spec, tree, test, timeout_s, candidate)
                else:
                    failure = stdin_test(tree, test, timeout_s)
            except TimedOut:
                first_failure = (
                    first_failure or f"test {number}: over the {timeout_s:g} s time limit (later tests not run)"
                )
                break
            if failure is None:
                passed += 1
            else:
                first_failure = first_failure or f"test {number}: {failure}"
    finally:
        if candidate is not None:
            candidate.stop()
    summary = f"{passed}/{len(tests)} tests passed" + (f"; first failure: {first_failure}" if first_failure else "")
    return bool(tests) and passed == len(tests), summary


def main() -> int:
    spec = seal()
    tree = sys.argv[1]
    try:
        if spec.get("own_sandbox"):
            CANDIDATE_PREFIX[:] = own_sandbox(tree)
        if spec["mode"] == "humaneval":
            passed, summary = check_humaneval(spec, tree)
        else:
            passed, summary = check_livecodebench(spec, tree)
    except IsolationError as error:
        passed, summary = False, f"the code under test could not be given a sandbox of its own: {error}"
    print(f"{VERDICT} {spec['nonce']} {'pass' if passed else 'fail'} {summary}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
