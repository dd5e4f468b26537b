#!/usr/bin/env bash
# Run sandboxed on a copy of the final tree ($1) with the harness's sica-pytest: the hidden tests of the new
# feature are scored (partial credit: the share that pass), the original tests must all keep passing; both run
# from this folder's read-only copy, never from the tree, so the tree cannot weaken or forge them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec sica-pytest --tree "$1" --required "$here/files/tests/test_textstats.py" "$here/hidden/test_word_count.py"
