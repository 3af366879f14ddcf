#!/usr/bin/env bash
# Install the project with its test tools into ./.venv and run the whole test suite.
# README's test command and .ci/run both call this script, so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
if [ "${SKIP_BROWSER_SETUP:-0}" != "1" ]; then bash scripts/browser.sh || echo "browser setup failed: browser tests will be skipped"; fi
exec .venv/bin/python -m pytest -q "$@"
