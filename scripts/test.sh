#!/usr/bin/env bash
# From a fresh clone: install everything, then run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
# llama.cpp's llama-server for the end-to-end provider tests (built once, ~5-10 min on 2 cores)
bash scripts/build-llama-server.sh || exit 1
# Debian's chromium for the browser tests of evalkit view (Playwright drives it; it never
# downloads a browser of its own). Installed as root where it is missing (CI).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null || exit 1
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
