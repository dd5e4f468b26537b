#!/usr/bin/env bash
# Exit 0 iff solved; partial credit as the share of hidden tests that pass (run sandboxed on a copy of the tree).
set -uo pipefail
cd "$1"
cp "$(dirname "$0")/hidden/test_word_count.py" tests/   # tests the agent never saw
cp "$(dirname "$0")/files/tests/test_textstats.py" tests/ # the agent may not weaken the visible ones
python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors tests > /tmp/out.txt 2>&1
status=$?
cat /tmp/out.txt
passed=$(grep -oE '[0-9]+ passed' /tmp/out.txt | grep -oE '[0-9]+' || echo 0)
echo "score: $(python3 -c "print(round(${passed:-0} / 3, 3))")"
exit $status
