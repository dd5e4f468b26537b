#!/usr/bin/env bash
# Exit 0 iff ANSWER names app/settings.py (a leading ./ and surrounding backticks or spaces are forgiven).
set -uo pipefail
answer=$(printf '%s' "${2:-}" | tr -d '`' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's|^\./||')
if [ "$answer" = "app/settings.py" ]; then exit 0; fi
echo "expected app/settings.py, got: ${2:-(no answer)}"
exit 1
