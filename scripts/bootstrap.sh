#!/usr/bin/env bash
# Install what the project needs to run from a fresh clone on a fresh machine: uv (from
# PyPI), the Python dependencies of the workspace (from uv.lock, exactly), the Kafka jars
# (from Maven Central) and PostgreSQL (from Debian's packages, on first start).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1" \
    || python3 -m pip install --quiet --user --disable-pip-version-check "uv>=0.5,<1"
  hash -r
  if ! command -v uv >/dev/null 2>&1; then
    PATH="$(python3 -m site --user-base)/bin:$PATH"
    export PATH
  fi
fi
uv sync --frozen --quiet
deploy/local/kafka.sh fetch >/dev/null
# The acknowledgement page's browser test drives Debian's headless Chromium (no browser
# download at run time is possible or wanted).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "bootstrap: installing chromium and chromium-driver from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# promtool (in Debian's prometheus package) checks the alert rules and runs their
# scenarios: without it those tests skip, and a rule that never fires goes unnoticed.
if ! command -v promtool >/dev/null 2>&1; then
  echo "bootstrap: installing prometheus (for promtool) from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
