"""The viewer's web application: its pages and live streams over what `runs`, `attempts`, `ledger` and `links`
read, with the token check on every request when one is set, and headers that keep the browser from running
anything the pages did not ship (a content security policy with no inline script: even a string that slipped
past escaping could not run)."""

from __future__ import annotations

import hmac
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from sica.archive import ArchiveError
from sica.config import UtilitySettings
from sica.report import gather_report
from sica.viewer import attempts, ledger, live, pages, runs
from sica.viewer.attempts import Sources
from sica.viewer.links import attempt_links
from sica.workspace.diffs import DIFF_CAP_BYTES

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "sica_view_token"
RUNS_A_PAGE = 20
RESULTS_A_PAGE = 100
VERSIONS_A_PAGE = 100
EVENTS_A_PAGE = 200
CALLS_A_PAGE = 20
ATTEMPTS_A_PAGE = 50
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _start(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("start", "0")))
    except ValueError:
        return 0


def _head(path: Path, cap: int) -> str:
    """The first `cap` bytes of a file the harness wrote, as text (saying so when cut); empty when absent."""
    try:
        with path.open("rb") as file:
            data = file.read(cap + 1)
    except OSError:
        return ""
    text = data[:cap].decode("utf-8", errors="replace")
    return text if len(data) <= cap else text + f"\n… (cut at {cap} bytes)"


def _host_name(header: str) -> str:
    """The host of a `Host` header, without its port (`[::1]:8770` → `::1`)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status)


def _not_found(message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=message)


def create_app(
    sources: Sources,
    weights: UtilitySettings,
    token: str | None = None,
    hosts: Collection[str] | None = None,
    stopping: threading.Event | None = None,
) -> FastAPI:
    """The viewer over `sources`; with `token`, every request must carry it (`Authorization: Bearer`, the
    `token` query parameter, which sets a cookie for the pages after it, or that cookie). With `hosts`, a request
    whose `Host` names another host is refused: a page elsewhere that makes its own name resolve to 127.0.0.1
    (DNS rebinding) cannot read a viewer that has no token. When `stopping` is set the live streams end, so the
    server can shut down without waiting for the pages that follow them."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        from_query = request.query_params.get("token")
        if hosts is not None and _host_name(request.headers.get("host", "")) not in hosts:
            return Response("this viewer answers only to its own address\n", status_code=403, headers=HEADERS)
        if token is not None:
            given = from_query or request.cookies.get(TOKEN_COOKIE) or ""
            header = request.headers.get("authorization", "")
            if header.lower().startswith("bearer "):
                given = header[7:]
            if not hmac.compare_digest(given.encode(), token.encode()):
                return Response(
                    "a token is needed: open the address `sica view` printed\n", status_code=401, headers=HEADERS
                )
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if token is not None and from_query:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return _html(pages.error_page(error.status_code, str(error.detail)), error.status_code)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def run_folder(name: str) -> Path:
        try:
            return runs.run_folder(sources.runs_dir, name)
        except ArchiveError as error:
            raise _not_found(str(error)) from None

    @app.get("/", response_class=HTMLResponse)
    def runs_list(request: Request) -> HTMLResponse:
        start = _start(request)
        names = runs.run_names(sources.runs_dir)
        listed = [runs.list_run(sources.runs_dir / n, weights) for n in names[start : start + RUNS_A_PAGE]]
        return _html(pages.runs_page(listed, start, RUNS_A_PAGE, len(names), str(sources.runs_dir)))

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run(name: str, request: Request) -> HTMLResponse:
        folder = run_folder(name)
        try:
            with runs.open_run(folder) as opened:
                report = gather_report(opened, weights)
                status = runs.run_status(opened)
                budget = runs.run_budget_usd(opened)
            spend = ledger.spend_over_time(folder / "run.sqlite")
        except (ArchiveError, sqlite3.Error) as error:
            raise HTTPException(500, f"cannot read run {name}: {error}") from None
        return _html(pages.run_page(report, status, budget, spend, _start(request), VERSIONS_A_PAGE))

    @app.get("/runs/{name}/versions/{number}", response_class=HTMLResponse)
    def version(name: str, number: int, request: Request) -> HTMLResponse:
        folder = run_folder(name)
        start = _start(request)
        filters = {k: request.query_params.get(k, "") for k in ("q", "status", "benchmark")}
        filters = {k: v for k, v in filters.items() if v}
        try:
            with runs.open_run(folder) as opened:
                found = opened.version(number)
                diff = opened.diff(number)
                every = opened.evaluations(number, every_repeat=True)
                links = attempt_links(opened, sources.results_dir, number)
                running = runs.run_status(opened) == runs.RUNNING
        except ArchiveError as error:
            raise _not_found(str(error)) from None
        wanted = [
            ev
            for ev in every
            if filters.get("q", "") in ev.problem_id
            and filters.get("benchmark", "") in ev.benchmark
            and (
                not filters.get("status")
                or (ev.infra if filters["status"] == "infra" else ev.status == filters["status"])
            )
        ]
        shown = wanted[start : start + RESULTS_A_PAGE]
        return _html(
            pages.version_page(name, found, diff, shown, links, filters, start, RESULTS_A_PAGE, len(wanted), running)
        )

    @app.get("/runs/{name}/stream")
    def run_stream(name: str) -> StreamingResponse:
        return StreamingResponse(live.run_changes(run_folder(name), stopping=stopping), media_type="text/event-stream")

    def attempt(source: str, relative: str) -> Path:
        try:
            return attempts.attempt_folder(sources, source, relative)
        except ArchiveError as error:
            raise _not_found(str(error)) from None

    @app.get("/attempts/{source}/{relative:path}", response_class=HTMLResponse)
    def attempt_view(source: str, relative: str, request: Request) -> HTMLResponse:
        folder = attempt(source, relative)
        start = _start(request) if request.query_params.get("section") != "ledger" else 0
        ledger_start = _start(request) if request.query_params.get("section") == "ledger" else 0
        run_name = request.query_params.get("run")
        if run_name is not None and run_name not in runs.run_names(sources.runs_dir):
            run_name = None
        read = attempts.read_events(folder, start, EVENTS_A_PAGE)
        ledger_path, account = ledger.attempt_ledger(sources, source, folder, run_name)
        try:
            window = attempts.attempt_window(folder)
            calls = ledger.ledger_view(ledger_path, account, ledger_start, CALLS_A_PAGE, window)
        except sqlite3.Error:
            calls = None
        diff_path = folder / "diff.patch"
        diff = _head(diff_path, DIFF_CAP_BYTES)
        crumbs = [(source, f"/{source}")]
        if run_name:
            crumbs = [(run_name, pages.run_href(run_name))]
        elif source == "runs":
            crumbs = [(relative.split("/", 1)[0], pages.run_href(relative.split("/", 1)[0]))]
        crumbs.append((relative, pages.attempt_href(source, relative, run_name)))
        params = {"run": run_name} if run_name else {}
        stream = f"/stream{pages.attempt_href(source, relative)}"
        related = []
        if source == "runs" and (folder / "smoke" / "outcome.json").is_file():
            related.append(("its smoke check", pages.attempt_href(source, f"{relative.rstrip('/')}/smoke")))
        return _html(
            pages.attempt_page(
                f"Attempt {relative}",
                crumbs,
                read,
                start,
                attempts.read_json(folder / "outcome.json"),
                attempts.overseer_records(folder),
                calls,
                ledger_start,
                diff,
                attempts.is_live(folder),
                pages.attempt_href(source, relative).split("?")[0],
                params,
                EVENTS_A_PAGE,
                stream,
                related,
            )
        )

    @app.get("/stream/attempts/{source}/{relative:path}")
    def attempt_stream(source: str, relative: str, request: Request) -> StreamingResponse:
        folder = attempt(source, relative)
        try:
            after = max(0, int(request.query_params.get("next", "0")))
        except ValueError:
            after = 0
        return StreamingResponse(live.attempt_events(folder, after, stopping), media_type="text/event-stream")

    def listing(source: str, title: str, request: Request) -> HTMLResponse:
        start = _start(request)
        root = sources.root(source)
        found, total = attempts.attempts_under(root, start, ATTEMPTS_A_PAGE)
        items = [
            (relative, attempts.read_json(root / relative / "outcome.json"), attempts.is_live(root / relative))
            for relative in found
        ]
        return _html(pages.attempts_page(title, source, items, start, ATTEMPTS_A_PAGE, total, str(root)))

    @app.get("/evals", response_class=HTMLResponse)
    def evals(request: Request) -> HTMLResponse:
        return listing("evals", "Evaluations", request)

    @app.get("/solves", response_class=HTMLResponse)
    def solves(request: Request) -> HTMLResponse:
        return listing("solves", "Solves", request)

    return app
