"""The `sica` command line, run as a real process: standalone gateway, ledger, chat, and one-line errors."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.cli import clean_environ, run_sica
from tests.support.config import scripted_config

CONFIG = scripted_config(gateway={"ledger_path": "ledger.sqlite"})


def sica(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_sica(cwd, *args, env=clean_environ(home=cwd), timeout=60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "sica.toml").write_text(CONFIG)
    (tmp_path / "script.jsonl").write_text('{"content": "scripted hello", "usage": {"input": 5, "output": 2}}\n' * 3)
    return tmp_path


def test_chat_streams_the_answer_and_reports_usage(workdir):
    done = sica("chat", "hi", "--model", "fake", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "scripted hello"
    assert "5 tokens in, 2 out" in done.stderr


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_standalone_gateway_prints_its_token_meters_calls_and_stops_on_ctrl_c(workdir):
    """Started as a shell starts a background job (SIGINT ignored, inherited): Ctrl-C still stops it."""
    process = subprocess.Popen([sys.executable, "-m", "sica", "gateway", "--port", "0", "--budget-usd", "1",
                                "--token", "sica-cli-test-token"], cwd=workdir,
                               env=clean_environ(home=workdir) | {"PYTHONFAULTHANDLER": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint)
    try:
        banner = "".join(process.stdout.readline() for _ in range(8))
        assert "token               sica-cli-test-token" in banner
        base_url = re.search(r"OpenAI base URL\s+(\S+)", banner).group(1)
        reply = httpx.post(base_url + "/chat/completions", headers={"authorization": "Bearer sica-cli-test-token"},
                           json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
        assert reply.json()["choices"][0]["message"]["content"] == "scripted hello"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # show where it hangs: faulthandler prints every thread on SIGABRT
            process.send_signal(signal.SIGABRT)
            raise AssertionError("the gateway did not stop on Ctrl-C:\n" + process.communicate(timeout=30)[1])
    assert process.returncode == 0, stderr
    assert "spent $0.000009 on this account in all" in stderr

    ledger = sica("gateway", "--ledger", cwd=workdir)
    assert ledger.returncode == 0, ledger.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in ledger.stdout.splitlines()]
    assert ["standalone", "fake", "scripted", "1", "0", "5", "2", "0.000009"] in rows


def test_port_in_use_is_a_one_line_error(workdir):
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = sica("gateway", "--port", str(taken.getsockname()[1]), cwd=workdir)
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1" in done.stderr and "--port 0" in done.stderr


@pytest.mark.parametrize(("args", "config", "code", "message"), [
    (["models", "list"], "[models.a]\nprovider = 1\n", 2, "models.a.provider"),
    (["gateway", "--ledger", "--ledger-path", "nowhere.sqlite"], "", 1, "no ledger at"),
    (["models", "install", "7b"], "", 1, "unknown local model '7b'; accepted names: 1.5b"),
    (["chat", "hi", "--model", "nope"], CONFIG, 1, "unknown model alias 'nope'"),
    (["--config", "missing.toml", "models", "list"], "", 2, "config file missing.toml not found"),
    (["gateway", "--port", "99999"], "", 2, "Invalid value for '--port': Input should be less than or equal to 65535"),
])
def test_bad_input_is_one_clear_line(workdir, args, config, code, message):
    (workdir / "sica.toml").write_text(textwrap.dedent(config))
    done = sica(*args, cwd=workdir)
    assert done.returncode == code, done.stderr
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_sandbox_run_prints_output_and_exits_with_the_command_status(workdir):
    done = sica("sandbox", "run", "--", "sh", "-c", "echo inside; id -u; exit 7", cwd=workdir)
    assert done.returncode == 7, done.stderr
    assert done.stdout.split()[0] == "inside"
    stopped = sica("sandbox", "run", "--timeout", "1", "--", "sleep", "30", cwd=workdir)
    assert stopped.returncode == 137 and "stopped: wall time limit" in stopped.stderr


def test_sandbox_none_needs_the_unsafe_flag_and_warns(workdir):
    refused = sica("sandbox", "run", "--backend", "none", "--", "true", cwd=workdir)
    assert refused.returncode == 1 and "explicit unsafe flag" in refused.stderr
    allowed = sica("sandbox", "run", "--backend", "none", "--unsafe", "--", "true", cwd=workdir)
    assert allowed.returncode == 0 and "runs unconfined" in allowed.stderr


def test_doctor_reports_backends_and_prerequisites_without_showing_keys(workdir):
    environ = clean_environ(home=workdir) | {"ANTHROPIC_API_KEY": "fake-provider-key-doctor-123456"}
    done = subprocess.run([sys.executable, "-m", "sica", "doctor"], cwd=workdir, capture_output=True, text=True,
                          timeout=60, env=environ)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1] + (" " + line.split()[2] if line.split()[1] in ("sandbox", "local") else ""): line
             for line in done.stdout.splitlines() if line.strip()}
    assert "no network but lo" in lines["sandbox bwrap"] and lines["sandbox bwrap"].startswith("ok")
    assert "ANTHROPIC_API_KEY      set" in done.stdout and "fake-provider-key-doctor" not in done.stdout + done.stderr


def test_benchmarks_list_and_build_as_a_user_runs_them(tmp_path):
    """`sica benchmarks list` names every built-in benchmark; `build` prepares one and says how many problems it
    has; an unknown name is one line naming the fix."""
    root = Path(__file__).resolve().parents[2]
    listed = run_sica(tmp_path, "benchmarks", "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("humaneval", "file_editing", "symbol_location", "bugfix", "livecodebench", "swebench_verified"):
        assert re.search(rf"^{name}\s", listed.stdout, re.MULTILINE), listed.stdout
    built = run_sica(tmp_path, "benchmarks", "build", f"taskdir:{root / 'examples' / 'tasks'}")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith(": 3 problems ready")
    humaneval = run_sica(tmp_path, "benchmarks", "build", "humaneval:2")
    assert (humaneval.returncode, humaneval.stdout.strip()) == (0, "humaneval:2: 2 problems ready"), humaneval.stderr
    unknown = run_sica(tmp_path, "benchmarks", "build", "nosuch")
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert "nosuch" in unknown.stderr
