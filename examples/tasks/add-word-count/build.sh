#!/usr/bin/env bash
# Lay out the starting tree in DEST (run by the harness, outside the sandbox, from this folder).
set -euo pipefail
cp -r files/. "$1"
