"""`python -m sica_agent solve|improve …`: the entry points of the agent contract.

Exit status: 0 when the agent finished its task (status done), 3 when it ended otherwise (its status is in
events.jsonl and printed), 2 for bad arguments or environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sica_agent.run import improve, solve
from sica_agent.settings import SettingsError, settings_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sica_agent")
    commands = parser.add_subparsers(dest="command", required=True)
    solve_args = commands.add_parser("solve", help="work on a task in a working directory")
    solve_args.add_argument("--task", type=Path, required=True, help="the task statement (Markdown)")
    solve_args.add_argument("--workdir", type=Path, required=True)
    solve_args.add_argument("--logdir", type=Path, required=True)
    improve_args = commands.add_parser("improve", help="improve the agent whose code is in --workdir")
    improve_args.add_argument("--workdir", type=Path, required=True, help="a copy of an agent version's code")
    improve_args.add_argument("--archive", type=Path, required=True, help="the read-only archive view")
    improve_args.add_argument("--logdir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for folder in (args.workdir, *([args.archive] if args.command == "improve" else [])):
        if not folder.is_dir():
            print(f"error: {folder} is not a directory", file=sys.stderr)
            return 2
    args.logdir.mkdir(parents=True, exist_ok=True)
    if args.command == "solve":
        result = solve(settings, args.task, args.workdir, args.logdir)
    else:
        result = improve(settings, args.workdir, args.archive, args.logdir)
    print(f"{result.status}: {result.summary}")
    return 0 if result.status == "done" else 3


if __name__ == "__main__":
    sys.exit(main())
