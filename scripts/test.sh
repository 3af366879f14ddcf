#!/usr/bin/env bash
# Install the project with its test tools into ./.venv and run the whole test suite.
# README's test command and .ci/run both call this script, so the two cannot drift apart.
# Two steps: the suite (under 15 minutes on 2 cores), then the crash-chaos tests (SIGKILL and restart `serve`
# and `run` ten times each; several minutes), which pytest deselects by default. With arguments, only
# `pytest ARGS` runs (e.g. `bash scripts/test.sh tests/unit`, or `-m chaos` for the second step alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
if [ "${SKIP_BROWSER_SETUP:-0}" != "1" ]; then bash scripts/browser.sh || echo "browser setup failed: browser tests will be skipped"; fi
if [ "$#" -gt 0 ]; then exec .venv/bin/python -m pytest -q "$@"; fi
.venv/bin/python -m pytest -q
echo "== crash chaos (pytest -m chaos)"
exec .venv/bin/python -m pytest -q -m chaos tests/hardening
