"""A meta step: the meta agent's `improve`, sandboxed on a copy of the base's code with the archive view mounted
read-only and its own time and cost caps, then its tree committed as the plan's version (valid or invalid with the
reason). Whatever the meta agent's tree makes the harness fail at (files git cannot stage, say) makes the version
invalid with the reason, never a crash of the loop."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sica.archive import ArchiveError, Run
from sica.archive.run_db import Version
from sica.benchmarks.base import Problem
from sica.config import Settings
from sica.gateway import RunningGateway
from sica.loop.archive_view import write_archive_view
from sica.loop.budget import RunBudget
from sica.loop.plan import Plan
from sica.loop.validation import Validation, one_line
from sica.runner.attempt import AttemptLimits, AttemptOutcome, Progress, run_attempt
from sica.runner.oversight import OverseerPlan, recorded_entries
from sica.runner.setup import prepared_agent
from sica.sandbox import Sandbox
from sica.sandbox.untrusted import UntrustedTreeError, read_untrusted_text
from sica.workspace.trees import copy_tree


@dataclass(frozen=True)
class Edit:
    """What a meta step's agent left: the step's row, the attempt's outcome, and its folder (the tree it made is
    the folder's `workdir`)."""

    step: int
    outcome: AttemptOutcome
    folder: Path

    @property
    def tree(self) -> Path:
        return self.folder / "workdir"


@dataclass
class MetaStep:
    """The meta steps of a run, its meta agents on `model`; `budget` caps and halts them."""

    settings: Settings
    run: Run
    sandbox: Sandbox
    gateway: RunningGateway
    budget: RunBudget
    model: str | None
    on_status: Callable[[str], None]

    async def edit(self, plan: Plan, account: str) -> Edit:
        """Run the plan's meta agent on a copy of its base, charged to `account`, until it ends or is halted."""
        folder = self.folder(plan)
        _set_aside(folder)
        with tempfile.TemporaryDirectory(prefix="sica-meta-") as scratch:
            Path(scratch).chmod(0o755)
            meta_code = self.run.checkout(plan.meta_agent, Path(scratch) / "meta-agent")
            base_code = self.run.checkout(plan.base, Path(scratch) / "base")
            view = write_archive_view(self.run, Path(scratch) / "archive", self.settings.loop.utility)
            base = Problem(
                f"meta/iteration-{plan.iteration}", "meta", "", lambda dest: copy_tree(base_code, dest), None
            )
            limits = dataclasses.replace(
                AttemptLimits.for_solve(self.settings.solve),
                time_limit_s=self.settings.loop.meta_time_limit_s,
                budget_usd=self.budget.meta_cap_usd(),
            )
            async with prepared_agent(
                self.settings.model_roles, self.settings.solve.envs_dir, meta_code, self.model
            ) as agent:
                step = self.run.db.start_meta_step(plan.iteration, plan.meta_agent, plan.base)

                def show(progress: Progress) -> None:
                    self.on_status(
                        f"iteration {plan.iteration}: agent-{plan.meta_agent} edits agent-{plan.base} · "
                        f"step {progress.step} {progress.tool} · {progress.tokens} tokens · "
                        f"${progress.cost_usd:.4f}"
                    )

                outcome = await run_attempt(
                    base,
                    agent,
                    limits,
                    self.sandbox,
                    self.gateway,
                    self.run.folder.name,
                    folder,
                    show,
                    self.budget.halt,
                    parent_account=account,
                    archive=view,
                    overseer=OverseerPlan.of(self.settings.overseer, self.settings.model_roles),
                )
        return Edit(step, outcome, folder)

    def interrupt(self, edit: Edit) -> None:
        """End the step's row `interrupted`: the run was halted before the step ended."""
        self.run.db.end_meta_step(
            edit.step,
            "interrupted",
            edit.outcome.cost_usd,
            error="halted before it ended",
            overseer=edit.outcome.overseer,
            overseer_entries=recorded_entries(edit.folder),
        )

    def commit(self, plan: Plan, edit: Edit, validation: Validation) -> Version:
        """Commit the edit as the plan's version, valid or invalid as `validation` says, and end the step's row."""
        outcome, new_code = edit.outcome, edit.tree
        reason = None if validation.valid else validation.reason
        # The version's own description when the meta agent wrote one, else what the meta agent said it did.
        written = _first_line(read_untrusted_text(new_code / "description.txt", 4000) or "")
        description = (
            written
            if written and written != self.run.version(plan.base).description
            else (_first_line(outcome.summary) or "no description")
        )
        change_log = (read_untrusted_text(new_code / "CHANGELOG.md", 4000) or "").strip() or outcome.summary
        number, reason = self._add_version(plan, new_code, description, change_log, reason)
        state, error = _meta_step_end(outcome.status, outcome.summary, reason)
        self.run.db.end_meta_step(
            edit.step, state, outcome.cost_usd, number, error, outcome.overseer, recorded_entries(edit.folder)
        )
        return self.run.version(number)

    def _add_version(
        self, plan: Plan, new_code: Path, description: str, change_log: str, reason: str | None
    ) -> tuple[int, str | None]:
        """Commit the plan's version: its files, or (when they cannot be archived: the meta agent's doing) its
        base's files, invalid with the reason. Its number and the reason it is invalid, if it is."""
        if new_code.is_dir():
            try:
                return self.run.add_version(plan.base, new_code, description, change_log, invalid_reason=reason), reason
            except (UntrustedTreeError, ArchiveError) as error:
                reason = f"{reason}; " if reason else ""
                reason += f"its files cannot be archived: {one_line(str(error))}"
        reason = reason or "its files could not be kept"
        return self.run.add_version(plan.base, None, description, change_log, invalid_reason=reason), reason

    def settle(self, plan: Plan, version: Version) -> float:
        """The cost of the meta step that made the plan's version; a crash after the commit left its row
        interrupted, and it is settled from the attempt's outcome as the uninterrupted step would have been."""
        step = [s for s in self.run.db.meta_steps() if s.iteration == plan.iteration][-1]
        if step.result_version is None:
            try:
                outcome = json.loads((self.folder(plan) / "outcome.json").read_text(encoding="utf-8"))
                status, summary, cost = str(outcome["status"]), str(outcome["summary"]), float(outcome["cost_usd"])
                overseer = str(outcome.get("overseer", ""))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                status, summary, cost = "error", "the meta step's outcome.json is missing or unreadable", step.cost_usd
                overseer = ""
            state, error = _meta_step_end(status, summary, version.invalid_reason)
            entries = recorded_entries(self.folder(plan))
            self.run.db.end_meta_step(step.id, state, cost, version.number, error, overseer, entries)
            return cost
        return step.cost_usd

    def folder(self, plan: Plan) -> Path:
        """Where the plan's meta step keeps its folders (its trace, its tree, its outcome)."""
        return self.run.folder / "meta" / f"iteration-{plan.iteration}"


def _meta_step_end(status: str, summary: str, invalid_reason: str | None) -> tuple[str, str | None]:
    """A finished meta step's row: `done` when its agent said so, else `failed`; the error, if any."""
    if status == "done":
        return "done", invalid_reason
    return "failed", invalid_reason or summary


def _set_aside(folder: Path) -> None:
    """Rename what an interrupted meta step left in `folder` to `folder`-interrupted-K, kept for its traces."""
    if not folder.exists():
        return
    tries = 1
    while (aside := folder.with_name(f"{folder.name}-interrupted-{tries}")).exists():
        tries += 1
    folder.rename(aside)


def _first_line(text: str) -> str:
    """The first non-blank line of `text`, at most 300 characters."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
