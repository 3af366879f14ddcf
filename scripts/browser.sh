#!/usr/bin/env bash
# Debian's chromium for the UI browser tests (Playwright drives it through executable_path;
# `playwright install` downloads a browser and cannot work on these machines).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing and cannot be installed here (need root and apt-get)" >&2; exit 1
fi
