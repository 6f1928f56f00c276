#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the web UI's browser test drives it (headless,
# through chromedp). Needs root (as CI runs); anyone else is told how to install it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  # The other tests still run; the browser test fails and says the same.
  echo "chromium is missing: the web UI's browser test needs it; install it with: sudo apt-get install -y chromium" >&2
  exit 0
fi
apt-get update >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
