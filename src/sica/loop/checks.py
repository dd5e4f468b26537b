"""The checks a meta step's tree passes before it is committed as a valid version: the archive can keep it as the
agent left it, it changes something, it validates (`validation`: environment, import, compiling, its own tests)
and it solves the smoke problem (`smoke`). A tree the harness cannot copy or prepare is invalid with the reason,
never a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uv

from sica.config import Settings
from sica.gateway import RunningGateway
from sica.loop.budget import RunBudget
from sica.loop.meta_step import Edit
from sica.loop.smoke import smoke_check
from sica.loop.validation import Validation, one_line, validate_version
from sica.runner.environments import AgentVersionError
from sica.sandbox import Sandbox
from sica.sandbox.untrusted import UntrustedTreeError, links_leaving
from sica.workspace.diffs import CUT_NOTE, LEFT_OUT_NOTE, NOTE, diff_notes


@dataclass
class VersionChecks:
    """The checks of the run's new versions; the smoke problem is charged to the run's account."""

    settings: Settings
    sandbox: Sandbox
    gateway: RunningGateway
    run_name: str
    budget: RunBudget
    on_status: Callable[[str], None]

    async def validate(self, iteration: int, edit: Edit) -> Validation | None:
        """Whether the edit makes a valid version, and if not why; None when the run was halted during its smoke
        problem."""
        outcome = edit.outcome
        unkept = unkept_tree(outcome.diff, edit.tree)
        if unkept is not None:
            return Validation(False, unkept)
        if not outcome.diff.strip():
            return Validation(False, f"the meta agent changed nothing ({outcome.status}: {outcome.summary})")
        self.on_status(f"iteration {iteration}: validating the new version")
        validation, smoked = await self._validated(iteration, edit)
        if smoked and self.budget.halted():
            return None
        return validation

    async def _validated(self, iteration: int, edit: Edit) -> tuple[Validation, bool]:
        """The checks of a new version (environment, import, compiling, own tests, then the smoke problem), and
        whether the smoke problem ran."""
        smoked = False
        try:
            validation = await asyncio.to_thread(
                validate_version, edit.tree, self.settings.solve.envs_dir.expanduser(), uv.find_uv_bin(), self.sandbox
            )
            if not validation.valid:
                return validation, smoked
            self.on_status(f"iteration {iteration}: the new version on a smoke problem")
            smoked = True
            failure = await smoke_check(
                self.settings,
                edit.tree,
                self.sandbox,
                self.gateway,
                self.run_name,
                edit.folder / "smoke",
                self.budget.halt,
                parent_account=self.budget.accounts.run_id,
            )
        except (UntrustedTreeError, AgentVersionError) as error:
            return Validation(False, f"it cannot be prepared: {one_line(str(error))}"), smoked
        return (validation if failure is None else Validation(False, failure)), smoked


def unkept_tree(diff: str, code: Path) -> str | None:
    """Why the meta agent's tree cannot be a version as it left it, if it cannot: the harness's copy of it is
    missing (it could not be made), its diff left parts out or was cut (what git or the copy cannot keep: the
    archive would hold another version than the one the agent made), or links lead out of it (on the host they
    would reach the host's files, not the version's)."""
    if not code.is_dir():
        return "its files could not be kept (see the meta step's outcome.json)"
    notes = [note.removeprefix(NOTE) for note in diff_notes(diff) if note.startswith((LEFT_OUT_NOTE, CUT_NOTE))]
    if notes:
        return f"its tree holds what the archive cannot keep ({'; '.join(notes)})"
    leaving = links_leaving(code)
    if leaving:
        more = f" and {len(leaving) - 3} more" if len(leaving) > 3 else ""
        return f"its files hold links out of its folder ({', '.join(leaving[:3])}{more}): a version is its own files"
    return None
