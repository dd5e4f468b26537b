"""Problem environments: what a package's test suite needs (pytest and the package's pinned test dependencies,
never the package itself, whose source is the agent's workdir), built outside the sandbox with uv from wheels
only, cached under `envs_dir` where the sandbox user can reach it, and mounted read-only, first on PATH, for
the agent and the scorer alike."""

from __future__ import annotations

from pathlib import Path

from sica.benchmarks.base import BenchmarkContext, BenchmarkError
from sica.runner.environments import EnvironmentBuildError, build_environment

#: Every problem environment has these: the test runner, and coverage (which lines the tests reach).
TEST_RUNNER = ("pytest==8.3.4", "coverage==7.6.10")


class ProblemEnvironmentError(BenchmarkError):
    """A problem environment that could not be built; one line."""


def check_environment(context: BenchmarkContext) -> Path:
    """The bin folder of the environment task folders' checks run with: the test runner alone, built by the
    harness (never the agent's environment, whose wheels the agent version chose)."""
    return problem_environment((), context)


def problem_environment(requirements: tuple[str, ...], context: BenchmarkContext) -> Path:
    """The bin folder of an environment with the test runner and `requirements` (each pinned `name==version`)."""
    unpinned = [r for r in requirements if "==" not in r]
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
