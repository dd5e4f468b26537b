"""`sica report`: a real run folder (git and SQLite) with valid, invalid, first-stage-only and running versions,
held-out results and infrastructure failures, reported as Markdown, HTML and PNG plots, by the API and the CLI."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from sica.archive import Run
from sica.config import UtilitySettings
from sica.gateway.accounts import Account
from sica.gateway.ledger import CallOutcome, Ledger
from sica.gateway.usage import TokenUsage
from sica.report import gather_report, write_report
from sica.report.layout import tree_layout
from sica.runner.environments import seed_agent_dir
from tests.support.cli import clean_environ, run_sica
from tests.support.runs import Result, edited

SEED = seed_agent_dir()
FILES = ("report.md", "report.html", "progress.png", "lineage.png")
RED = (214, 39, 40)  # matplotlib's tab:red, the invalid versions' marker
INVALID_FILL = (0xF4, 0xCC, 0xCC)
BEST_FILL = (0xFF, 0xD9, 0x66)
MIX = ("toy/0", "toy/1", "toy/2", "other/0", "other/1")


def evaluate(run: Run, version: int, scores: dict[str, float], holdout: dict[str, float] | None = None,
             infra: tuple[str, ...] = ()) -> None:
    for problem, score in scores.items():
        run.record_evaluation(version, Result(problem, score, benchmark=problem.split("/")[0],
                                              infra=problem in infra))
    for problem, score in (holdout or {}).items():
        run.record_evaluation(version, Result(problem, score, part="holdout"))


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """A run as `sica improve` leaves it mid-way (the writer still holds it):

    - agent 0: the whole mix (other/1 an infrastructure failure), two held-out problems;
    - agent 1 (from 0): fully evaluated, everything solved; its description has markup in it;
    - agent 2 (from 1): invalid;
    - agent 3 (from 1): stopped early (two of the five problems);
    - a fourth meta step still running."""
    config = {"benchmarks": ["toy:3", "other:2"], "holdout": ["toy:2"], "model": "scripted", "policy": "sica"}
    with Run.create(tmp_path / "runs" / "r1", SEED, config) as opened:
        evaluate(opened, 0, {"toy/0": 1.0, "toy/1": 0.0, "toy/2": 1.0, "other/0": 1.0, "other/1": 0.0},
                 {"toy/9": 1.0, "toy/10": 0.0}, infra=("other/1",))
        changes = [(0, "agent 1: plans | first $x$ <b>bold</b>", None), (1, "agent 2: breaks it", "its own tests fail"),
                   (1, "agent 3: retries edits", None)]
        for iteration, (base, description, invalid) in enumerate(changes, start=1):
            step = opened.db.start_meta_step(iteration, 0, base)
            code = edited(opened, base, tmp_path / f"e{iteration}", description)
            number = opened.add_version(base, code, description, f"- {description}", invalid_reason=invalid)
            opened.db.end_meta_step(step, "failed" if invalid else "done", 0.25 * iteration, number, invalid)
        evaluate(opened, 1, dict.fromkeys(MIX, 1.0), {"toy/9": 1.0, "toy/10": 1.0})
        evaluate(opened, 3, {"toy/0": 0.0, "other/0": 1.0})
        opened.db.start_meta_step(4, 1, 3)
        ledger = Ledger(opened.db.path)  # as the run's gateway keeps it, in run.sqlite
        account = Account("a1", "run", None)
        ledger.add_account(account, None)
        call = ledger.begin_call(account.id, "task", "scripted", "scripted", False, 0, 0, None)
        ledger.end_call(call, CallOutcome("ok", TokenUsage(1, 1), 1_500_000_000, 200, None, 1, 0.0, 0.1, None))
        ledger.close()
        opened.db.set_state("elapsed_s", 100.0)
        opened.db.set_state("iteration", 3)
        yield opened


def report_files(run_folder: Path, out: Path) -> list[Path]:
    with Run.open(run_folder, read_only=True) as reader:
        return write_report(gather_report(reader, UtilitySettings()), out)


def row(markdown: str, version: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| {version} |"))


def test_the_markdown_shows_lineage_scores_held_out_costs_and_validity(run: Run, tmp_path: Path):
    written = report_files(run.folder, tmp_path / "out")
    assert [path.name for path in written] == list(FILES)
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert ("| version | parent | change | other (selection) | toy (selection) | toy (held-out) | utility |"
            " cost $ (eval + meta) | time s (eval + meta) | state | evaluated |") in markdown
    # agent 0: toy 1, 0, 1 → 0.667 ± 4.303·√(1/9); held-out 1, 0 → 0.5 ± 12.706·0.5; other/1 left out (infra).
    # Utility per problem 0.5·score + 0.25·(1 − 0.01/10) + 0.25·(1 − 2/300) over the 4 scored: 0.873.
    # Cost: 7 problems at $0.01, no meta step; time: 7 × 2 s.
    agent_0 = row(markdown, "agent-0").split(" | ")
    assert agent_0[:2] == ["| agent-0", "–"] and agent_0[2].startswith("agent 0: the seed") and len(agent_0[2]) <= 80
    assert agent_0[3:] == ["1.000 (n=1)", "0.667 ± 1.434 (n=3)", "0.500 ± 6.353 (n=2)", "0.873",
                           "0.0700 (0.0700 + 0.0000)", "14 (14 + 0)", "valid", "all (5 problems); 1 infra failure |"]
    agent_1 = row(markdown, "agent-1")
    assert agent_1.startswith(r"| agent-1 | agent-0 | agent 1: plans \| first $x$ &lt;b>bold&lt;/b> |")
    assert "| 0.998 | 0.3200 (0.0700 + 0.2500) |" in agent_1 and agent_1.endswith("| valid | all (5 problems) |")
    assert "| agent-2 | agent-1 | agent 2: breaks it | – | – | – | – |" in markdown
    assert row(markdown, "agent-2").endswith("| invalid: its own tests fail | not evaluated |")
    agent_3 = row(markdown, "agent-3")
    assert "| 1.000 (n=1) | 0.000 (n=1) | – | 0.748 |" in agent_3
    assert agent_3.endswith("| valid | stopped early (2 of 5) |")
    for line in ("- Best version: agent-1 (utility 0.998)",
                 "- Accepted as better, and better on held-out problems: 1 of 1 (100%) of the 1 times a version took"
                 " the best's place", "- Spent: $1.5000",
                 "- Versions: 4 (3 valid, 1 invalid)", "- Held-out benchmarks: toy:2", "- Iterations done: 3",
                 "- Recorded cost (evaluations + meta steps): $1.6600", "![", "(progress.png)", "(lineage.png)",
                 "- Staged evaluation: 9 problems run for the valid versions after agent 0, against 14 to evaluate "
                 "each on the whole mix (36% saved)"):
        assert line in markdown
    assert "| 2 | agent-0 | agent-1 | failed | 0.5000 |" in markdown
    assert "| agent-2 | its own tests fail |" in markdown
    assert "| 4 | agent-1 | agent-3 | running | 0.0000 | – | – | – |" in markdown


class StrictHtml(HTMLParser):
    """Checks that every element is closed in order; collects the tags and the table cells' text."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []
        self.cells: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] in ("td", "th"):
            self.cells.append(data)


def test_the_html_is_well_formed_and_escapes_what_meta_agents_wrote(run: Run, tmp_path: Path):
    report_files(run.folder, tmp_path)
    parser = StrictHtml()
    parser.feed((tmp_path / "report.html").read_text())
    parser.close()
    assert parser.open == []
    assert parser.tags.count("table") == 2 and "b" not in parser.tags
    assert parser.images == ["progress.png", "lineage.png"]
    assert "agent 1: plans | first $x$ <b>bold</b>" in parser.cells
    assert {"toy (held-out)", "0.667 ± 1.434 (n=3)", "invalid: its own tests fail",
            "stopped early (2 of 5)"} <= set(parser.cells)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def has_colour(path: Path, colour: tuple[int, int, int]) -> bool:
    with Image.open(path) as image:
        return any(found == colour for _, found in image.convert("RGB").getcolors(1 << 24) or [])


def test_the_plots_are_pngs_showing_invalid_and_best_versions(run: Run, tmp_path: Path):
    report_files(run.folder, tmp_path)
    progress, lineage = tmp_path / "progress.png", tmp_path / "lineage.png"
    assert png_size(progress) == (1210, 605)
    width, height = png_size(lineage)
    assert width >= 550 and height >= 330
    for path in (progress, lineage):
        assert path.stat().st_size > 10_000
        with Image.open(path) as image:
            image.verify()
    assert has_colour(progress, RED)
    assert has_colour(lineage, INVALID_FILL) and has_colour(lineage, BEST_FILL)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_with_only_agent_0_and_no_evaluations_still_reports(tmp_path: Path):
    with Run.create(tmp_path / "runs" / "fresh", SEED, {}) as fresh:
        folder = fresh.folder
    written = report_files(folder, folder)
    assert all(path.parent == folder and path.stat().st_size > 0 for path in written)
    markdown = (folder / "report.md").read_text()
    assert "- Best version: none scored yet" in markdown
    assert row(markdown, "agent-0").endswith("| – | 0.0000 (0.0000 + 0.0000) | 0 (0 + 0) | valid | not evaluated |")
    assert "## Meta steps\n\nNone yet." in markdown and "(held-out)" not in markdown
    assert png_size(folder / "progress.png") == (1210, 605)
    assert not has_colour(folder / "progress.png", RED)


def test_the_lineage_layout_puts_generations_in_rows_and_parents_over_children():
    places = tree_layout({0: None, 1: 0, 2: 1, 3: 0, 4: 1})
    assert places == {0: (1.25, 0), 1: (0.5, 1), 2: (0.0, 2), 4: (1.0, 2), 3: (2.0, 1)}
    chain = tree_layout({n: (n - 1 if n else None) for n in range(5000)})
    assert chain[4999] == (0.0, 4999)
    assert tree_layout({0: None, 1: 7, 2: 2}) == {0: (0.0, 0), 1: (1.0, 0), 2: (2.0, 0)}


@pytest.fixture(scope="module")
def environ(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """No user configuration; one matplotlib cache for the module's commands."""
    home = tmp_path_factory.mktemp("home")
    return clean_environ(home=home) | {"MPLCONFIGDIR": str(home / "mpl")}


def test_the_command_reports_a_run_by_name_while_its_writer_holds_it(run: Run, tmp_path: Path,
                                                                       environ: dict[str, str]):
    done = run_sica(tmp_path, "report", "r1", env=environ, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(Path("runs", "r1", name)) for name in FILES]
    assert "| agent-2 | agent-1 |" in (run.folder / "report.md").read_text()
    elsewhere = run_sica(tmp_path, "report", str(run.folder), "--out", str(tmp_path / "copy"), env=environ,
                         timeout=120)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert sorted(path.name for path in (tmp_path / "copy").iterdir()) == sorted(FILES)


def test_the_command_names_the_fix_for_a_bad_run(tmp_path: Path, environ: dict[str, str]):
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    for name, message in [("nope", "no run 'nope'"), ("empty", "no run 'empty'")]:
        refused = run_sica(tmp_path, "report", name, env=environ, timeout=60)
        assert refused.returncode == 1, refused.stderr
        assert refused.stderr.count("\n") == 1 and message in refused.stderr and "ls " in refused.stderr
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "run.sqlite").write_text("not a database")
    refused = run_sica(tmp_path, "report", "broken", env=environ, timeout=60)
    assert refused.returncode == 1 and "not a readable run database" in refused.stderr
    assert refused.stderr.count("\n") == 1
