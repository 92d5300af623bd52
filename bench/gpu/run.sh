#!/usr/bin/env bash
# One call on the lent GPU machine: build kernkit with CUDA, run the CUDA tests, run the GPU
# benchmarks, and leave logs and tables in OUTDIR (default $OUT or bench/results/gpu).
# Usage: bash bench/gpu/run.sh [OUTDIR] [STEP...]   STEP: tests, profile, or a family with a
# bench/gpu/bench_<family>_gpu.py (default: tests, then every family; profile is only run when
# named: Nsight Compute on one call per family, bench/gpu/profile_targets.py, ~1 min)
# No internet there: --no-build-isolation. KAT's Triton kernel and FlashKAT are found through
# FLASHKAT_PATH (default .ext/FlashKAT, a checkout carried beside the repo, never committed).
# TAR_TO=FILE: after every step, OUTDIR is packed into FILE (what a killed run still returns).
# KERNKIT_GPU_TESTS=all runs every test of those files, not only the CUDA ones.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=$(mkdir -p "${1:-${OUT:-bench/results/gpu}}" && cd "${1:-${OUT:-bench/results/gpu}}" && pwd)
shift || true
FAMILIES=$(ls bench/gpu/bench_*_gpu.py | sed 's|.*/bench_\(.*\)_gpu.py|\1|')
STEPS=${*:-tests $FAMILIES}
export PYTHONUNBUFFERED=1 FLASHKAT_PATH=${FLASHKAT_PATH:-$PWD/.ext/FlashKAT}
exec > >(tee "$OUTDIR/run.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
start=$(date +%s)
# packages missing there (array-api-compat), carried as wheels in .whl (README of the device tool)
deps=$(ls .whl/*.whl 2>/dev/null | grep -v '/kernkit-' || true)
if [ -n "$deps" ]; then python -m pip install -q --no-index --no-deps $deps; fi
# kernkit itself: the wheel prebuild_wheel.sh made, where it was built from this very source
# (same source hash) for this Python; else built here
prebuilt=$(ls .whl/kernkit-*cp"$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"*.whl 2>/dev/null | head -1)
if [ -n "$prebuilt" ] && [ "$(cat .whl/kernkit.source-hash 2>/dev/null)" = "$(bash bench/gpu/source_hash.sh)" ]; then
  python -m pip install -q --no-index --no-deps --force-reinstall "$prebuilt" || { echo "INSTALL FAILED"; exit 1; }
  echo "installed the prebuilt $(basename "$prebuilt")"
else
  [ -n "$prebuilt" ] && echo "the prebuilt wheel is stale (source hash $(cat .whl/kernkit.source-hash 2>/dev/null), this tree's $(bash bench/gpu/source_hash.sh)): building"
  KERNKIT_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 timeout 400 python -m pip install --no-build-isolation \
    --no-deps -q -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=native -Cbuild-dir=build/gpu . \
    || { echo "BUILD FAILED"; exit 1; }
fi
echo "build: $(( $(date +%s) - start )) s"
python -m kernkit info
for step in $STEPS; do
  t0=$(date +%s)
  case $step in
    tests) # the CUDA cases of every test file that has some (the CPU cases run in CI)
           files=$(grep -l "cuda_available" tests/python/test_*.py | sed "s|^|$PWD/|")
           sel=(-k "(cuda or gpu) and not emulation")
           [ "${KERNKIT_GPU_TESTS:-}" = all ] && sel=()
           (cd /tmp && timeout 240 python -m pytest -q -rfEs -p no:cacheprovider --timeout 120 \
              "${sel[@]}" $files 2>&1 | tail -80 > "$OUTDIR/tests.txt");
           cat "$OUTDIR/tests.txt" ;;
    profile) # kernel time, DRAM share, occupancy, registers of each family's kernels
           if command -v ncu >/dev/null; then
             # (an NVTX filter profiled nothing on the H200: ranges named with '/' do not match)
             timeout "${KERNKIT_GPU_STEP_TIMEOUT:-240}" ncu --profile-from-start off --csv \
               --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
               --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
               python bench/gpu/profile_targets.py > "$OUTDIR/profile.csv" 2> "$OUTDIR/profile.err"
             tail -5 "$OUTDIR/profile.err"
             python bench/gpu/profile_summary.py "$OUTDIR/profile.csv" --out "$OUTDIR" > /dev/null \
               && cat "$OUTDIR/profile_gpu.md"
           else
             echo "no ncu on this machine"; python bench/gpu/profile_targets.py
           fi ;;
    *) timeout "${KERNKIT_GPU_STEP_TIMEOUT:-240}" python "bench/gpu/bench_${step}_gpu.py" --out "$OUTDIR" ;;
  esac
  echo "== $step: rc $? in $(( $(date +%s) - t0 )) s"
  if [ -n "${TAR_TO:-}" ]; then tar czf "$TAR_TO" -C "$OUTDIR" .; fi
done
echo "total: $(( $(date +%s) - start )) s"
