"""Problem environments: what a package's test suite needs (pytest and the package's pinned test dependencies,
never the package itself, whose source is the agent's workdir), built outside the sandbox with uv from wheels
only, cached under `envs_dir` where the sandbox user can reach it, and mounted read-only, first on PATH, for
the agent and the scorer alike. Their requirements follow the same rules as an agent's
(`sica.workspace.environments.registry_requirements`: names from the registry only), in the same builder."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from sica.benchmarks.base import BenchmarkContext, BenchmarkError
from sica.workspace.environments import EnvironmentBuildError, build_environment, registry_requirements

#: Every problem environment has these: the test runner, and coverage (which lines the tests reach).
TEST_RUNNER = ("pytest==8.3.4", "coverage==7.6.10")


class ProblemEnvironmentError(BenchmarkError):
    """A problem environment that could not be built; one line."""


def check_environment(context: BenchmarkContext) -> Path:
    """The bin folder of the environment task folders' checks run with: the test runner alone, built by the
    harness (never the agent's environment, whose wheels the agent version chose)."""
    return problem_environment((), context)


def problem_environment(requirements: tuple[str, ...], context: BenchmarkContext) -> Path:
    """The bin folder of an environment with the test runner and `requirements` (each a requirement by name from
    the registry, pinned `name==version`)."""
    try:
        registry_requirements(list(requirements), "problem requirements")
    except EnvironmentBuildError as error:
        raise ProblemEnvironmentError(str(error)) from None
    unpinned = [r for r in requirements if not _pinned(r)]
    if unpinned:
        raise ProblemEnvironmentError(f"problem requirements must be pinned (name==version): {', '.join(unpinned)}")
    wanted = problem_requirements(requirements)
    context.on_progress(f"environment: {', '.join(wanted)}")
    try:
        return build_environment(wanted, context.envs_dir, context.uv_bin) / "bin"
    except EnvironmentBuildError as error:
        raise ProblemEnvironmentError(f"building a problem environment failed: {error}") from None


def problem_requirements(requirements: tuple[str, ...]) -> list[str]:
    """What the environment of a problem needing `requirements` installs: those and the test runner, sorted."""
    return sorted({*TEST_RUNNER, *requirements})


def _pinned(requirement: str) -> bool:
    """Whether `requirement` (already checked by `registry_requirements`) asks for exactly one version."""
    specifiers = list(Requirement(requirement).specifier)
    return len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version
