"""The CUDA kernels' source run on the host (no GPU): tests/cuda_emu converts cuda/hashattn.cu,
cuda/quant.cu, cuda/toeplitz_fused.cu, cuda/rational.cu and cuda/special.cu for an emulator that
runs every block's threads as std::threads with real barriers for __syncthreads and warp shuffles
(shared-memory atomics as std::atomic_ref), and checks the results against dense formulas in
double (special.cu: bit for bit against the header's scalar functions).
It checks indexing, reductions, synchronisation and every dtype / mode path; not timing,
memory spaces or alignment (those need the GPU run, bench/gpu)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMU = ROOT / "tests" / "cuda_emu"
pytestmark = pytest.mark.slow


def _cuda_include() -> Path | None:
    cands = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        cands.insert(0, str(Path(nvcc).resolve().parents[1]))
    for c in cands:
        if c and (Path(c) / "include" / "cuda_fp16.h").exists():
            return Path(c) / "include"
    return None


@pytest.mark.parametrize("name", ["hashattn", "quant", "toeplitz_fused", "rational", "special"])
def test_kernels_in_host_emulation(name: str, tmp_path: Path) -> None:
    cxx = shutil.which("g++") or shutil.which("clang++")
    inc = _cuda_include()
    if cxx is None or inc is None:
        pytest.skip("needs a C++20 compiler and the CUDA headers")
    gen = tmp_path / f"{name}_emu.cpp"
    subprocess.run([sys.executable, str(EMU / "make_emu.py"), str(ROOT / "cuda" / f"{name}.cu"), str(gen)],
                   check=True)
    exe = tmp_path / "emu"
    build = subprocess.run([cxx, "-std=c++20", "-O1", f"-I{EMU}", f"-I{ROOT / 'cpp' / 'include'}",
                            f"-I{ROOT / 'cuda'}", f"-I{inc}", "-Wno-deprecated-declarations",
                            str(EMU / f"{name}_emu_main.cpp"), str(gen), "-o", str(exe), "-lpthread"],
                           capture_output=True, text=True)
    if build.returncode != 0 and "barrier" in build.stderr:
        pytest.skip("the compiler lacks std::barrier (C++20)")
    assert build.returncode == 0, build.stderr[-4000:]
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "all ok" in res.stdout, res.stdout + res.stderr
