#!/usr/bin/env bash
# Builds kernkit's CUDA wheel here, for the GPU machine's Python (3.12) and card (sm_90: H100,
# H200), into .whl/ with the source hash beside it; run.sh installs it there instead of building
# (a fresh machine's build takes ~140 s of its 15-minute budget). Incremental: build/cp312-cuda
# keeps the objects, so after a change only what changed recompiles (the first build: ~30 min on
# 2 cores). Usage: bash bench/gpu/prebuild_wheel.sh [PYTHON3.12]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-$(ls /root/.pyenv/versions/3.12.*/bin/python3.12 2>/dev/null | head -1)}
VENV=${TMPDIR:-/tmp}/kernkit-prebuild-venv
[ -x "$VENV/bin/python" ] || { "$PY" -m venv "$VENV" &&
  "$VENV/bin/pip" install -q nanobind scikit-build-core numpy ninja cmake nvidia-cufft; }
CUFFT=$("$VENV/bin/python" -c "import nvidia, os; print(os.path.join(nvidia.__path__[0], 'cu13'))")
mkdir -p .whl && rm -f .whl/kernkit-*.whl .whl/kernkit.source-hash
KERNKIT_CUDA=ON KERNKIT_CUFFT_ROOT="$CUFFT" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  "$VENV/bin/pip" wheel . --no-deps --no-build-isolation -w .whl -Cbuild-dir=build/cp312-cuda \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90
bash bench/gpu/source_hash.sh > .whl/kernkit.source-hash
ls -la .whl
