"""`sica view` over a run made by a scripted `sica improve`: its pages (through the app and through the command
as a user starts it), escaping of what the agents wrote, the token rule, the live streams, and one-line errors
for bad input. The browser's view of the same pages is tests/unit/test_viewer_browser.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from sica.archive import Run
from sica.config import UtilitySettings, load_settings
from sica.gateway.ledger import Ledger
from sica.runner.results import agent_code_hash
from sica.viewer import Sources, create_app
from sica.viewer.links import attempt_links, version_code_hash
from sica.viewer.live import attempt_events, run_changes
from tests.support.cli import clean_environ, run_sica
from tests.support.runs import database_content
from tests.support.viewer import FAKE_KEY, HOSTILE, improve_args, scripted_run, served


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a finished scripted run `demo`: agent 0, agent 1 (its description hostile markup) and an
    invalid agent 2; the evaluations under `evals`."""
    folder = tmp_path_factory.mktemp("viewer")
    scripted_run(folder)
    return folder


def sources_of(home: Path) -> Sources:
    settings = load_settings(home / "sica.toml", {})
    return Sources(home / settings.loop.runs_dir, settings.eval.results_dir, home / "solves")


@pytest.fixture(scope="module")
def client(home: Path) -> TestClient:
    return TestClient(create_app(sources_of(home), UtilitySettings()))


class Parsed(HTMLParser):
    """The tags of a page, with their attributes, and its text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def assert_nothing_hostile(page: Parsed) -> None:
    """No tag or attribute an agent wrote made it into the page as markup: one script (the viewer's own), no
    image, no event handler, no `javascript:` link."""
    assert [a.get("src") for t, a in page.tags if t == "script"] == ["/static/viewer.js"]
    assert page.having("img") == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert not any((a.get("href") or "").lower().startswith("javascript") for _, a in page.tags)


def test_the_runs_list_shows_status_spend_versions_and_best(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = Parsed(response.text)
    assert page.having("a", href="/runs/demo")
    row = re.search(r'<a href="/runs/demo">demo</a>.*?</tr>', response.text)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(0))
    assert "finished" in cells[0] and cells[2:4] == ["3", "2"]  # three versions, two iterations
    assert cells[1].startswith("$0.0") and "of none" in cells[1]
    assert cells[4].startswith("agent-")


def test_the_run_page_has_its_iterations_chart_lineage_spend_and_meta_steps(client: TestClient) -> None:
    response = client.get("/runs/demo")
    assert response.status_code == 200
    page = Parsed(response.text)
    assert [a["data-label"] for a in page.having("g", **{"class": "point"})] == ["agent-0", "agent-1", "agent-2"]
    assert [a["data-version"] for a in page.having("g", **{"class": "node invalid"})] == ["2"]
    nodes = {a["data-version"] for t, a in page.tags if t == "g" and (a.get("class") or "").startswith("node")}
    assert nodes == {"0", "1", "2"}
    table = response.text.split('id="versions"')[1].split("</table>")[0]
    assert table.count("<tr>") == 4  # the header and a row a version
    assert "invalid: the meta agent changed nothing" in table
    assert page.having("svg", id="spend") and page.having("polyline", **{"class": "spend-line"})
    assert page.having("a", href="/attempts/runs/demo/meta/iteration-1")
    assert_nothing_hostile(page)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in response.text  # shown, as text


def test_the_version_page_shows_the_change_diff_and_results_linked_to_attempts(client: TestClient) -> None:
    response = client.get("/runs/demo/versions/1")
    assert response.status_code == 200
    page = Parsed(response.text)
    assert_nothing_hostile(page)
    assert "agent 1: plans first " + HOSTILE in "".join(page.text)
    assert '<span class="add">+agent 1: plans first &lt;script&gt;' in response.text
    results = response.text.split('id="results"')[1].split("</table>")[0]
    links = re.findall(r'href="(/attempts/evals/[^"]+)"', results)
    assert len(links) == 3 and all(link.endswith("?run=demo") for link in links)
    failed = client.get("/runs/demo/versions/1", params={"status": "failed"}).text.split('id="results"')[1]
    done = client.get("/runs/demo/versions/1", params={"status": "done"}).text.split('id="results"')[1]
    assert failed.split("</table>")[0].count("<tr>") + done.split("</table>")[0].count("<tr>") == 3 + 2
    only = client.get("/runs/demo/versions/1", params={"q": "gamma"}).text.split('id="results"')[1]
    assert only.split("</table>")[0].count("<tr>") == 2 and "gamma" in only


def test_each_version_links_to_the_attempts_of_its_own_code(home: Path, tmp_path: Path) -> None:
    sources = sources_of(home)
    with Run.open(home / "runs" / "demo", read_only=True) as run:
        zero, one = attempt_links(run, sources.results_dir, 0), attempt_links(run, sources.results_dir, 1)
        assert {problem for problem, _ in zero} == {e.problem_id for e in run.evaluations(0)}
        assert {key[0] for key in one} == {e.problem_id for e in run.evaluations(1)}
        assert (0 in {r for _, r in zero}) and (1 in {r for _, r in zero})  # agent 0's rematch: repeat 1
        assert not set(zero.values()) & set(one.values())
        assert attempt_links(run, sources.results_dir, 2) == {}  # invalid: never evaluated
        for number in (0, 1):  # the code hash read from git is the one the evaluation computed on a checkout
            assert version_code_hash(run, number) == agent_code_hash(run.checkout(number, tmp_path / f"v{number}"))


def test_results_taken_from_the_cache_link_to_the_attempts_that_made_them(home: Path) -> None:
    """A second run of agent 0 on the same problems takes every result from the store: its version page links
    to the first run's attempts."""
    again = run_sica(home, *improve_args(home, "again", 0))
    assert again.returncode == 0, again.stderr
    sources = sources_of(home)
    with Run.open(home / "runs" / "again", read_only=True) as run:
        links = attempt_links(run, sources.results_dir, 0)
        results = {(e.problem_id, e.repeat) for e in run.evaluations(0, every_repeat=True)}
    with Run.open(home / "runs" / "demo", read_only=True) as run:
        first = attempt_links(run, sources.results_dir, 0)
    assert set(links) == results and len(results) == 3
    assert links == {key: first[key] for key in results}


def test_the_attempt_page_shows_events_ledger_verdict_and_diff_escaped(client: TestClient) -> None:
    version = client.get("/runs/demo/versions/1").text
    link = re.findall(r'href="(/attempts/evals/[^"]+alpha[^"]+)"', version)[0].replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 200
    page = Parsed(response.text)
    assert_nothing_hostile(page)
    text = "".join(page.text)
    assert f"wrote done.txt {HOSTILE}" in text  # the agent's summary, as text
    assert page.having("li", **{"class": "agent", "data-agent": "main-1"})
    events = response.text.split('id="events"')[1].split("</table>")[0]
    assert events.count("<tr>") == 1 + 8  # agent_start, 2 × (llm_call, tool_call, tool_result), agent_end
    agreement = re.search(r'id="ledger-agreement">(.*?)</p>', response.text)
    assert agreement is not None and "has 2 calls, 2100 input and 30 output tokens" in agreement.group(1)
    assert "They disagree" not in agreement.group(1)
    assert "status (the harness&#x27;s finding)</dt><dd>done" in response.text
    tools = response.text.split('id="tool-calls"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>main-1</td><td>(\w+)</td><td>.*?</td><td>(\w+)</td>", tools) == [
        ("create", "ok"),
        ("complete", "ok"),
    ]
    assert '<span class="add">+ok</span>' in response.text
    alone = client.get(link.split("?")[0])  # as the evaluations list links it: the run is found by its ledger
    assert alone.status_code == 200 and "has 2 calls, 2100 input and 30 output tokens" in alone.text
    meta = client.get("/attempts/runs/demo/meta/iteration-1")
    assert meta.status_code == 200 and "has 2 calls" in meta.text
    assert Parsed(meta.text).having("a", href="/attempts/runs/demo/meta/iteration-1/smoke")
    smoke = client.get("/attempts/runs/demo/meta/iteration-1/smoke")
    assert smoke.status_code == 200 and "has 2 calls" in smoke.text  # the smoke problem's two scripted replies
    assert_nothing_hostile(Parsed(meta.text))


def test_attempt_addresses_cannot_leave_their_folders(client: TestClient, home: Path) -> None:
    for address in (
        "/attempts/evals/%2e%2e/runs/demo",
        "/attempts/evals/..%2F..%2Fetc",
        "/attempts/etc/passwd",
        "/attempts/runs/demo/meta/iteration-9",
    ):
        response = client.get(address)
        assert response.status_code == 404, address
        assert 'id="error"' in response.text


def test_unknown_runs_and_versions_are_404_with_the_fix(client: TestClient) -> None:
    response = client.get("/runs/nope")
    assert response.status_code == 404 and "no run &#x27;nope&#x27;" in response.text and "demo" in response.text
    response = client.get("/runs/demo/versions/7")
    assert response.status_code == 404 and "agent-7 is not in run" in response.text


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time; but SQLite's `-shm` files, the shared
    memory where every reader of a database in WAL mode marks what it reads (never data)."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith("-shm")]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_pages_are_read_only_and_keep_to_the_security_policy(client: TestClient, home: Path) -> None:
    before, files = database_content(home / "runs" / "demo"), files_of(home / "runs" / "demo")
    stored = files_of(home / "evals")
    addresses = ["/", "/runs/demo", "/runs/demo/versions/0", "/runs/demo/versions/1", "/runs/demo/versions/2"]
    addresses += ["/evals", "/solves", "/attempts/runs/demo/meta/iteration-1"]
    addresses += re.findall(r'href="(/attempts/evals/[^"]+)"', client.get("/runs/demo/versions/0").text)
    for address in addresses:
        response = client.get(address.replace("&amp;", "&"))
        assert response.status_code == 200, address
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert database_content(home / "runs" / "demo") == before
    assert files_of(home / "runs" / "demo") == files and files_of(home / "evals") == stored


def test_a_token_is_checked_on_every_request(home: Path) -> None:
    guarded = TestClient(create_app(sources_of(home), UtilitySettings(), token="s3cret"))
    for address in ("/", "/runs/demo", "/static/viewer.js", "/stream/attempts/evals/x"):
        assert guarded.get(address).status_code == 401, address
    assert guarded.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = guarded.get("/runs/demo", params={"token": "s3cret"})
    assert first.status_code == 200 and first.cookies.get("sica_view_token") == "s3cret"
    assert guarded.get("/runs/demo/versions/0").status_code == 200  # the cookie carries it on
    guarded.cookies.clear()
    assert guarded.get("/runs/demo/versions/0").status_code == 401


def test_the_attempt_stream_follows_a_live_attempt_until_it_ends(tmp_path: Path) -> None:
    folder, logdir = tmp_path / "try-1", tmp_path / "scratch" / "logdir"
    logdir.mkdir(parents=True)
    folder.mkdir()
    (folder / "live.json").write_text(json.dumps({"logdir": str(logdir), "workdir": str(tmp_path)}))
    event = {"v": 1, "run": "r", "problem": "p", "agent_id": "main-1", "parent_id": None, "type": "message"}

    def agent() -> None:
        with (logdir / "events.jsonl").open("a") as events:
            for n in range(3):
                events.write(json.dumps({**event, "ts": time.time(), "data": {"text": f"step {n} {HOSTILE}"}}) + "\n")
                events.flush()
                time.sleep(0.4)
        (folder / "live.json").unlink()
        time.sleep(0.6)  # scoring: the stream ends only once the outcome is written
        ended.append(time.monotonic())
        (folder / "outcome.json").write_text("{}")

    ended: list[float] = []

    async def follow() -> list[str]:
        return [chunk async for chunk in attempt_events(folder, 1)]

    writer = threading.Thread(target=agent)
    writer.start()
    chunks = asyncio.run(asyncio.wait_for(follow(), 20))
    writer.join()
    data = [json.loads(chunk.split("data: ", 1)[1]) for chunk in chunks if chunk.startswith("event: agent-event")]
    assert [(row["index"], row["text"]) for row in data] == [(1, f"step 1 {HOSTILE}"), (2, f"step 2 {HOSTILE}")]
    assert chunks[-1].startswith("event: end") and time.monotonic() >= ended[0]
    assert all(chunk.count("\n\n") == 1 for chunk in chunks)  # one event each: agent text cannot end one early


def test_a_running_run_shows_running_and_streams_its_changes(home: Path, tmp_path: Path) -> None:
    """A writer holding the run (as `sica improve` does) makes it `running`; each write is a `changed` event, and
    the stream ends when the writer lets go."""
    shutil.copytree(home / "runs" / "demo", tmp_path / "runs" / "copy", symlinks=True)
    client = TestClient(create_app(Sources(tmp_path / "runs", tmp_path / "evals", tmp_path / "s"), UtilitySettings()))
    assert "finished" in client.get("/").text
    folder = tmp_path / "runs" / "copy"
    writer = Run.open(folder)
    try:
        assert '<span class="status running">running</span>' in client.get("/").text
        assert 'data-stream="/runs/copy/stream"' in client.get("/runs/copy").text

        def write_then_close() -> None:
            time.sleep(0.6)
            writer.db.set_state("viewer test", 1)
            time.sleep(0.6)
            writer.close()

        async def follow() -> list[str]:
            return [chunk async for chunk in run_changes(folder, every_s=0.2)]

        thread = threading.Thread(target=write_then_close)
        thread.start()
        chunks = asyncio.run(asyncio.wait_for(follow(), 20))
        thread.join()
    finally:
        writer.close()
    kinds = [chunk.split("\n", 1)[0] for chunk in chunks if chunk.startswith("event:")]
    assert kinds[0] == "event: changed" and kinds[-1] == "event: end"
    assert "finished" in client.get("/").text


def test_a_solve_is_listed_and_its_attempt_shown_with_its_own_ledger(home: Path, tmp_path: Path) -> None:
    env = clean_environ() | {"SICA_SOLVE__SOLVES_DIR": str(tmp_path / "solves")}
    solved = run_sica(home, "solve", "--task-dir", str(home / "tasks" / "alpha"), "--model", "task", env=env)
    assert solved.returncode == 0, solved.stderr
    with served(home, "--solves", env=env) as address:
        listed = httpx.get(address, timeout=30)
        (link,) = re.findall(r'href="(/attempts/solves/[^"]+)"', listed.text)
        shown = httpx.get(address.rsplit("/solves", 1)[0] + link, timeout=30)
    assert shown.status_code == 200
    assert shown.text.split('id="events"')[1].split("</table>")[0].count("<tr>") == 1 + 8
    assert "has 2 calls, 2100 input and 30 output tokens" in shown.text
    assert_nothing_hostile(Parsed(shown.text))


def test_the_command_serves_the_pages_and_no_key_reaches_them(home: Path) -> None:
    with served(home, "demo") as address:
        assert address.endswith("/runs/demo")
        base = address.rsplit("/runs/", 1)[0]
        for path in ("/runs/demo", "/", "/runs/demo/versions/1", "/evals"):
            response = httpx.get(base + path, timeout=30)
            assert response.status_code == 200, path
            assert FAKE_KEY not in response.text
        # Another host's name resolved to this address (DNS rebinding) gets nothing.
        rebound = httpx.get(base + "/runs/demo", headers={"Host": "attacker.example:8770"}, timeout=30)
        assert rebound.status_code == 403 and "demo" not in rebound.text
    with served(home, str(home / "runs" / "demo")) as address:  # a run's folder serves the runs beside it
        assert address.endswith("/runs/demo") and "agent-1" in httpx.get(address, timeout=30).text
    with served(home, "--evals") as address:
        assert address.endswith("/evals") and httpx.get(address, timeout=30).status_code == 200
        listed = httpx.get(address, timeout=30).text
        assert "/attempts/evals/" in listed
        table = listed.split('id="attempts"')[1].split("</table>")[0]
        assert table.count('<span class="status done">done</span>') == table.count("<tr>") - 1 > 0
    with served(home, "--solves") as address:
        listed = httpx.get(address, timeout=30)
        assert address.endswith("/solves") and listed.status_code == 200 and "None yet." in listed.text


def test_the_command_with_a_token_refuses_requests_without_it(home: Path) -> None:
    with served(home, "demo", "--token", "tok-1") as address:
        assert address.endswith("/runs/demo?token=tok-1")
        base = address.split("/runs/")[0]
        assert httpx.get(base + "/runs/demo", timeout=30).status_code == 401
        assert httpx.get(address, timeout=30).status_code == 200


def test_the_command_refuses_bad_input_in_one_line(home: Path, tmp_path: Path) -> None:
    refused = run_sica(home, "view", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: --host 0.0.0.0 is reachable from other machines: pass --token T (any secret) as well"
    ]
    unknown = run_sica(home, "view", "nope", "--port", "0")
    assert unknown.returncode == 1 and "no run 'nope' under" in unknown.stderr and "demo" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    (home / "runs" / "broken").mkdir(exist_ok=True)
    (home / "runs" / "broken" / "run.sqlite").write_bytes(b"this is not a database" * 100)
    try:
        corrupt = run_sica(home, "view", "broken", "--port", "0")
        assert corrupt.returncode == 1
        assert "run.sqlite is not a readable run database" in corrupt.stderr and "restore it" in corrupt.stderr
        listed = TestClient(create_app(sources_of(home), UtilitySettings())).get("/")
        assert listed.status_code == 200 and "unreadable" in listed.text
    finally:
        (home / "runs" / "broken" / "run.sqlite").unlink()
        (home / "runs" / "broken").rmdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_sica(home, "view", "--port", str(port))
    assert busy.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use: pass --port N, or --port 0 for any free port" in busy.stderr


def test_a_corrupt_database_is_never_written(home: Path) -> None:
    """The viewer opens SQLite read-only: a query that would write fails instead."""
    from sica.viewer.runs import connect_read_only

    db = connect_read_only(home / "runs" / "demo" / "run.sqlite")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("CREATE TABLE x (y)")
    db.close()


def test_ctrl_c_stops_the_viewer_while_a_page_follows_a_live_attempt(tmp_path: Path) -> None:
    attempt = tmp_path / "evals" / "e1" / "problems" / "p" / "try-1"
    (attempt / "logdir").mkdir(parents=True)
    (attempt / "logdir" / "events.jsonl").write_text("")
    (attempt / "live.json").write_text(json.dumps({"logdir": str(attempt / "logdir")}))
    (tmp_path / "sica.toml").write_text('[eval]\nresults_dir = "evals"\n[loop]\nruns_dir = "runs"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "sica", "view", "--evals", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environ(),
    )
    try:
        assert process.stdout is not None
        address = re.search(r"http://\S+", process.stdout.readline())
        assert address is not None
        base = address.group(0).rsplit("/evals", 1)[0]
        with httpx.stream("GET", f"{base}/stream/attempts/evals/e1/problems/p/try-1", timeout=30) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            process.wait(timeout=20)
        assert time.monotonic() - started < 10
        assert "viewer stopped" in process.communicate()[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_attempt_shows_sub_agents_the_overseer_and_where_the_ledger_disagrees(tmp_path: Path) -> None:
    """A standalone evaluation's attempt (its own ledger.sqlite): a sub-agent nested under its caller, the
    overseer's records as text, lines that are no events counted, and the ledger's three calls against the one
    the agent reports flagged."""
    attempt = tmp_path / "evals" / "e1" / "problems" / "p" / "try-1"
    (attempt / "logdir").mkdir(parents=True)
    base = {"v": 1, "ts": 1.0, "run": "e1", "problem": "toy/1", "parent_id": None}
    events = [
        {**base, "agent_id": "main-1", "type": "agent_start", "data": {"kind": "main", "task": "t", "model": "m"}},
        {**base, "agent_id": "dev-2", "parent_id": "main-1", "type": "agent_start", "data": {"kind": "developer"}},
        {
            **base,
            "agent_id": "dev-2",
            "parent_id": "main-1",
            "type": "llm_call",
            "data": {"model": "m", "input_tokens": 10, "output_tokens": 5},
        },
        {
            **base,
            "ts": 3.5,
            "agent_id": "dev-2",
            "parent_id": "main-1",
            "type": "agent_end",
            "data": {"status": "done", "summary": HOSTILE},
        },
        # Two agents that name each other as caller: no chain from the top reaches them, yet both are shown.
        {**base, "agent_id": "x-3", "parent_id": "y-4", "type": "message", "data": {"text": "x"}},
        {**base, "agent_id": "y-4", "parent_id": "x-3", "type": "message", "data": {"text": "y"}},
    ]
    lines = [json.dumps(event) for event in events] + ["not an event", json.dumps({"v": 2})]
    (attempt / "logdir" / "events.jsonl").write_text("\n".join(lines) + "\n")
    (attempt / "outcome.json").write_text(json.dumps({"status": "done", "score": {"value": 0.0}}))
    (attempt / "overseer.jsonl").write_text(
        json.dumps({"v": 1, "ts": 2.0, "type": "judgement", "data": {"verdict": "looping", "reason": HOSTILE}})
        + "\n"
        + json.dumps({"v": 1, "ts": 2.5, "type": "action", "data": {"action": "notify", "agent": "dev-2"}})
        + "\n"
    )
    (tmp_path / "evals" / "e1" / "results.jsonl").write_text(
        json.dumps({"problem_id": "toy/1", "folder": str(attempt)})
    )
    ledger = tmp_path / "evals" / "e1" / "ledger.sqlite"
    Ledger(ledger).close()
    with closing(sqlite3.connect(ledger)) as db, db:
        db.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'toy/1 e1', 0), ('b', 'other e1', 0)")
        for account in ("a", "a", "a", "b"):
            db.execute(
                "INSERT INTO calls (account_id, alias, provider, model, stream, owner, status, input_tokens,"
                " output_tokens, cost_nano, reserved_nano, reserved_tokens, started_at, request_body, response_body)"
                " VALUES (?, 'm', 'p', 'm', 0, 'o', 'ok', 10, 5, 1000, 1000, 15, 1.0, ?, ?)",
                (account, json.dumps({"messages": [{"role": "user", "content": HOSTILE}]}), "{}"),
            )
    client = TestClient(create_app(Sources(tmp_path / "runs", tmp_path / "evals", tmp_path / "s"), UtilitySettings()))
    response = client.get("/attempts/evals/e1/problems/p/try-1")
    assert response.status_code == 200
    page = Parsed(response.text)
    assert_nothing_hostile(page)
    graph = response.text.split('id="call-graph"')[1].split("</ul></li></ul>")[0]
    assert '<li class="agent" data-agent="main-1">' in graph and '<ul><li class="agent" data-agent="dev-2">' in graph
    assert "2.5 s · 1 model calls · 15 tokens" in graph
    whole = response.text.split('id="call-graph"')[1].split("<h2>")[0]
    assert whole.count('data-agent="x-3"') == 1 and whole.count('data-agent="y-4"') == 1
    assert "2 lines of events.jsonl were not valid events" in response.text
    overseer = response.text.split('id="overseer"')[1].split("</table>")[0]
    assert "verdict: looping\nreason: &lt;script&gt;" in overseer and "action: notify\nagent: dev-2" in overseer
    agreement = re.search(r'id="ledger-agreement">(.*?)</p>', response.text)
    assert agreement is not None and agreement.group(0).startswith('id="ledger-agreement">The ledger')
    assert "has 3 calls" in agreement.group(1) and "report 1 calls" in agreement.group(1)
    assert "They disagree: trust the ledger." in agreement.group(1)
    assert response.text.count("[user] &lt;script&gt;") == 3


def test_attempts_sharing_an_account_name_each_see_their_own_calls(tmp_path: Path) -> None:
    """Two tries of a problem open accounts of the same name: each try's page shows the calls made while it ran
    (from its `task.md` to its `outcome.json`)."""
    evaluation = tmp_path / "evals" / "e1"
    tries = [evaluation / "problems" / "p" / f"try-{n}" for n in (1, 2)]
    log = []
    for n, folder in enumerate(tries):
        (folder / "logdir").mkdir(parents=True)
        (folder / "logdir" / "events.jsonl").write_text("")
        for name, at in (("task.md", 1000 + 100 * n), ("outcome.json", 1050 + 100 * n)):
            (folder / name).write_text("{}")
            os.utime(folder / name, (at, at))
        log.append(json.dumps({"problem_id": "toy/1", "folder": str(folder)}))
    (evaluation / "results.jsonl").write_text("\n".join(log) + "\n")
    Ledger(evaluation / "ledger.sqlite").close()
    with closing(sqlite3.connect(evaluation / "ledger.sqlite")) as db, db:
        db.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'toy/1 e1', 0), ('b', 'toy/1 e1', 0)")
        for account, at, tokens in (("a", 1010, 7), ("a", 1020, 7), ("b", 1110, 9)):
            db.execute(
                "INSERT INTO calls (account_id, alias, provider, model, stream, owner, status, input_tokens,"
                " output_tokens, cost_nano, reserved_nano, reserved_tokens, started_at) VALUES"
                " (?, 'm', 'p', 'm', 0, 'o', 'ok', ?, 1, 0, 0, 0, ?)",
                (account, tokens, at),
            )
    client = TestClient(create_app(Sources(tmp_path / "runs", tmp_path / "evals", tmp_path / "s"), UtilitySettings()))
    first = client.get("/attempts/evals/e1/problems/p/try-1").text
    second = client.get("/attempts/evals/e1/problems/p/try-2").text
    assert "has 2 calls, 14 input" in first and "has 1 calls, 9 input" in second


def test_the_call_graph_and_the_ledger_comparison_count_every_event_not_one_page(tmp_path: Path) -> None:
    attempt = tmp_path / "evals" / "e1" / "problems" / "p" / "try-1"
    (attempt / "logdir").mkdir(parents=True)
    base = {"v": 1, "ts": 1.0, "run": "e1", "problem": "toy/1", "agent_id": "main-1", "parent_id": None}
    call = {**base, "type": "llm_call", "data": {"input_tokens": 10, "output_tokens": 1}}
    lines = [json.dumps(call) for _ in range(450)]
    (attempt / "logdir" / "events.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "evals" / "e1" / "results.jsonl").write_text(
        json.dumps({"problem_id": "toy/1", "folder": str(attempt)})
    )
    ledger = tmp_path / "evals" / "e1" / "ledger.sqlite"
    Ledger(ledger).close()
    with closing(sqlite3.connect(ledger)) as db, db:
        db.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'toy/1 e1', 0)")
        db.executemany(
            "INSERT INTO calls (account_id, alias, provider, model, stream, owner, status, input_tokens,"
            " output_tokens, cost_nano, reserved_nano, reserved_tokens, started_at) VALUES"
            " ('a', 'm', 'p', 'm', 0, 'o', 'ok', 10, 1, 0, 0, 0, 1.0)",
            [()] * 450,
        )
    client = TestClient(create_app(Sources(tmp_path / "runs", tmp_path / "evals", tmp_path / "s"), UtilitySettings()))
    for start in (0, 200, 400):
        page = client.get("/attempts/evals/e1/problems/p/try-1", params={"start": start}).text
        rows = page.split('id="events"')[1].split("</table>")[0].count("<tr>") - 1
        assert rows == min(200, 450 - start)
        assert "450 model calls · 4950 tokens" in page
        assert "the agent&#x27;s events report 450 calls and 4500 input tokens." in page and "They disagree" not in page
        timeline = page.split('id="events"')[1].split("<h2>")[0]  # the events and their pager
        assert ('rel="next"' in timeline) == (start < 400) and ('rel="prev"' in timeline) == (start > 0)
