#!/usr/bin/env bash
# One call on the lent GPU machine: build kernkit with CUDA, run the CUDA tests, run the GPU
# benchmarks, and leave logs and tables in OUTDIR (default $OUT or bench/results/gpu).
# Usage: bash bench/gpu/run.sh [OUTDIR]     (no internet there: --no-build-isolation)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${1:-${OUT:-bench/results/gpu}}
mkdir -p "$OUTDIR"
exec > >(tee "$OUTDIR/run.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
start=$(date +%s)
KERNKIT_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 python -m pip install --no-build-isolation --no-deps \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=native -Cbuild-dir=build/gpu . || { echo "BUILD FAILED"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
python -m kernkit info
python -m pytest -q tests/python/test_cuda.py tests/python/test_special.py tests/python/test_foundation.py \
  tests/python/test_rational.py tests/python/test_quant.py \
  2>&1 | tail -25 | tee "$OUTDIR/tests.txt"
python bench/gpu/bench_special_gpu.py --out "$OUTDIR"
python bench/gpu/bench_rational_gpu.py --out "$OUTDIR"
python bench/gpu/bench_quant_gpu.py --out "$OUTDIR"
echo "total: $(( $(date +%s) - start )) s"
