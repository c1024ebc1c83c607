#!/usr/bin/env bash
# From a fresh clone: install everything, then run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
# llama.cpp's llama-server for the end-to-end provider tests (built once, ~5-10 min on 2 cores)
bash scripts/build-llama-server.sh || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
