"""`sica view` in real headless Chromium (Debian's `chromium`, over the DevTools protocol on loopback) against
runs made by a scripted `sica improve`: every page renders without console errors and runs none of the script
the agents wrote; the chart has one point per version with its labels, a hover shows the change and a click opens
the version; the lineage tree has every version; an attempt page shows events live while the run goes on.
Screenshots of each page are kept in the test's folder (the path is printed)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import Page, chromium, chromium_path
from tests.support.cli import clean_environ
from tests.support.viewer import improve_args, prepare, scripted_run, served, wait_for_file

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="chromium is not installed: `make install` installs it (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("viewer-browser")
    scripted_run(folder)
    return folder


@pytest.fixture(scope="module")
def address(home: Path) -> Iterator[str]:
    with served(home) as found:
        yield found.rstrip("/")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("viewer-screenshots")
    print(f"\nscreenshots of the viewer's pages: {folder}")
    return folder


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with chromium(tmp_path / "profile") as opened:
        yield opened


def visit(page: Page, url: str, shots: Path, name: str, status: int = 200) -> None:
    """Load `url`; it must render without a console error (but the browser's note of the page's own status, when
    it is an error page) and without running anything an agent wrote."""
    page.goto(url)
    page.screenshot(shots / f"{name}.png")
    own = f"log: Failed to load resource: the server responded with a status of {status} (Not Found) {url}"
    assert [error for error in page.errors if status == 200 or error != own] == [], (url, page.errors)
    assert page.evaluate("typeof window.__pwned") == "undefined", url
    assert page.evaluate("document.querySelectorAll('script').length") == 1, url
    assert page.evaluate("document.querySelectorAll('main img, main [onerror]').length") == 0, url


def test_every_page_renders_without_errors_or_agent_script(page: Page, address: str, screenshots: Path) -> None:
    visit(page, f"{address}/", screenshots, "runs")
    assert page.evaluate("document.querySelector('#runs a').textContent") == "demo"
    visit(page, f"{address}/runs/demo", screenshots, "run")
    visit(page, f"{address}/runs/demo/versions/1", screenshots, "version")
    description = page.evaluate("document.getElementById('description').textContent")
    assert "<script>window.__pwned=1</script>" in description  # shown as the text it is
    attempts = page.evaluate("[...document.querySelectorAll('#results a')].map(a => a.getAttribute('href'))")
    assert len(attempts) == 3
    visit(page, f"{address}{attempts[0]}", screenshots, "attempt")
    assert page.evaluate("document.querySelectorAll('#events tbody tr').length") == 8
    assert "<script>" in page.evaluate("document.getElementById('verdict').textContent")
    assert page.evaluate("document.querySelectorAll('#ledger tbody tr').length") == 2
    visit(page, f"{address}/attempts/runs/demo/meta/iteration-1", screenshots, "meta-step")
    visit(page, f"{address}/evals", screenshots, "evaluations")
    visit(page, f"{address}/runs/demo/versions/9", screenshots, "missing-version", 404)  # a 404 page renders too
    assert "agent-9 is not in run" in page.evaluate("document.getElementById('error').textContent")


def test_the_chart_and_lineage_have_every_version(page: Page, address: str, screenshots: Path) -> None:
    visit(page, f"{address}/runs/demo", screenshots, "run-chart")
    labels = page.evaluate("[...document.querySelectorAll('#progress g.point')].map(g => g.dataset.label)")
    assert labels == ["agent-0", "agent-1", "agent-2"]
    ticks = page.evaluate("[...document.querySelectorAll('#progress g.point text')].map(t => t.textContent)")
    assert ticks == ["0", "1", "2"]
    assert page.evaluate("document.querySelectorAll('#progress g.point circle.invalid').length") == 1
    assert page.evaluate("document.querySelectorAll('#progress path.best-line').length") == 1
    nodes = page.evaluate("[...document.querySelectorAll('#lineage g.node')].map(g => g.dataset.version).sort()")
    assert nodes == ["0", "1", "2"]
    page.evaluate(
        "document.querySelectorAll('#progress g.point')[1].dispatchEvent(new MouseEvent('mouseenter', "
        "{clientX: 300, clientY: 100}))"
    )
    tooltip = page.evaluate("document.getElementById('tooltip').textContent")
    assert tooltip.startswith("agent-1: agent 1: plans first <script>window.__pwned=1</script>")
    assert page.evaluate("document.getElementById('tooltip').hidden") is False
    page.screenshot(screenshots / "run-hover.png")
    page.evaluate("document.querySelectorAll('#progress a.point-link')[1].dispatchEvent(new MouseEvent('click'))")
    page.wait_for("location.pathname === '/runs/demo/versions/1' && document.readyState === 'complete'")
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_an_attempt_page_shows_events_live_while_a_run_goes_on(page: Page, tmp_path: Path, screenshots: Path) -> None:
    """Each scripted reply takes 2 s, so agent 0's first problem is still running when its page is opened: the
    events that come after appear on the page, which then notices the attempt's end and shows its verdict. While
    the run goes on, its page reloads itself as the run's database changes."""
    prepare(tmp_path, latency_s=2.0)
    run = subprocess.Popen(
        [sys.executable, "-m", "sica", *improve_args(tmp_path, "live", 1)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environ(),
    )
    try:
        with served(tmp_path) as address:
            live = wait_for_file("*/problems/*/try-1/live.json", tmp_path / "evals", timeout=120)
            relative = live.parent.relative_to(tmp_path / "evals")
            page.goto(f"{address.rstrip('/')}/attempts/evals/{relative}")
            assert page.evaluate("document.getElementById('attempt-status').textContent") == "running"
            shown = page.evaluate("document.querySelectorAll('#events tbody tr').length")
            assert shown < 8
            page.wait_for("document.querySelectorAll('#events tbody tr.live').length > 0", timeout=30)
            page.wait_for("document.getElementById('attempt-status').textContent === 'finished'", timeout=60)
            # Once over, the page loads again with the verdict the harness wrote (and no stream any more).
            page.wait_for("document.getElementById('verdict') !== null", timeout=30)
            assert page.evaluate("document.body.dataset.stream === undefined")
            rows = page.evaluate("[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[3].textContent)")
            assert rows == ["agent_start", "llm_call", "tool_call", "tool_result"] * 1 + [
                "llm_call",
                "tool_call",
                "tool_result",
                "agent_end",
            ]
            indices = page.evaluate(
                "[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[0].textContent)"
            )
            assert indices == [str(n) for n in range(8)]
            page.screenshot(screenshots / "attempt-live.png")
            assert page.errors == []
            assert page.evaluate("typeof window.__pwned") == "undefined"
            # The run goes on (its iteration: a meta step, checks, an evaluation): its page follows it.
            page.goto(f"{address.rstrip('/')}/runs/live")
            assert page.evaluate("document.getElementById('run-status').textContent") == "running"
            page.evaluate("window.__before_reload = 1")
            page.wait_for("window.__before_reload === undefined && document.readyState === 'complete'", timeout=60)
            assert page.errors == [] and page.evaluate("typeof window.__pwned") == "undefined"
    finally:
        run.terminate()
        _, errors = run.communicate(timeout=60)
