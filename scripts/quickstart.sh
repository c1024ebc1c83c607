#!/usr/bin/env bash
# From a fresh clone: install everything, then run a real eval on the bundled local model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1
.venv/bin/evalkit eval tasks/factual_qa.py "$@"
