#!/usr/bin/env bash
# Exit 0 iff the task is solved in WORKTREE (run sandboxed on a copy of the agent's final tree).
set -euo pipefail
cd "$1"
cp "$(dirname "$0")/files/tests/test_textstats.py" tests/test_textstats.py   # the agent may not weaken the tests
python3 -m pytest -q -p no:cacheprovider tests
