#!/usr/bin/env bash
# Exit 0 iff every test of this folder's read-only copy passes on the final tree ($1), run with the harness's
# sica-pytest (isolated from the tree, with canary tests): the agent can neither weaken the tests nor forge them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec sica-pytest --tree "$1" --required "$here/files/tests/test_textstats.py"
