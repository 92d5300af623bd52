"""Build-level checks: the C++ consumer, the CUDA sources under nvcc, typing with mypy --strict."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import kernkit

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cmake() -> str:
    exe = shutil.which("cmake")
    if exe is None:
        pytest.skip("cmake is not installed")
    return exe


def _generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def test_cpp_consumer_finds_and_links_kernkit(tmp_path: Path) -> None:
    cmake = _cmake()
    build = tmp_path / "consumer"
    for cmd in ([cmake, "-S", str(ROOT / "tests/cpp/consumer"), "-B", str(build), *_generator(),
                 f"-Dkernkit_DIR={kernkit.cmake_dir()}", "-DCMAKE_BUILD_TYPE=Release"],
                [cmake, "--build", str(build)]):
        step = subprocess.run(cmd, capture_output=True, text=True)
        assert step.returncode == 0, step.stdout[-4000:] + step.stderr[-4000:]
    res = subprocess.run([str(build / "consumer")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "log_iv(0.5, 2)" in res.stdout


def _cufft_root() -> str | None:
    env = os.environ.get("KERNKIT_CUFFT_ROOT")
    if env:
        return env
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        for cand in glob.glob(os.path.join(sp, "nvidia", "*", "include", "cufft.h")):
            return str(Path(cand).parents[1])
    return None


def test_cuda_sources_compile_with_nvcc(tmp_path: Path) -> None:
    """Every .cu file compiles (no GPU needed), so CUDA code never rots unseen."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed")
    cmake = _cmake()
    root = _cufft_root()
    if root is None:
        pytest.skip("cuFFT headers not found: pip install nvidia-cufft (CI does) or set KERNKIT_CUFFT_ROOT")
    build = tmp_path / "cuda"
    cfg = subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), *_generator(),
                          "-DKERNKIT_CUDA=ON", "-DKERNKIT_PYTHON=OFF", f"-DKERNKIT_CUFFT_ROOT={root}",
                          "-DCMAKE_CUDA_ARCHITECTURES=90"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    sources = sorted(p.name for p in (ROOT / "cuda").glob("*.cu"))
    assert sources, "no .cu files found"
    res = subprocess.run([cmake, "--build", str(build), "--target", "kernkit_cuda"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    built = {p.name.removesuffix(".o") for p in build.rglob("*.cu.o")}
    assert set(sources) <= built, f"not compiled: {set(sources) - built}"


def test_cuda_on_without_nvcc_fails_clearly(tmp_path: Path) -> None:
    cmake = _cmake()
    res = subprocess.run([cmake, "-S", str(ROOT), "-B", str(tmp_path / "b"), *_generator(),
                          "-DKERNKIT_CUDA=ON", "-DKERNKIT_PYTHON=OFF",
                          "-DCMAKE_CUDA_COMPILER=/nonexistent/nvcc"],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "KERNKIT_CUDA=ON but" in res.stdout + res.stderr


def test_mypy_strict_on_a_user_script() -> None:
    pytest.importorskip("mypy")
    res = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          str(ROOT / "tests/typing/user_script.py")], capture_output=True, text=True,
                         cwd=str(ROOT / "tests"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_on_the_package() -> None:
    """The package ships py.typed: its own sources type-check under --strict (pyproject.toml
    lists the optional third-party modules that may be absent or untyped); kernkit.torch, whose
    classes subclass torch's, only where torch is installed."""
    pytest.importorskip("mypy")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "python/kernkit"]
    if importlib.util.find_spec("torch") is None:
        cmd += ["--exclude", "python/kernkit/torch[.]py"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
    assert res.returncode == 0, res.stdout + res.stderr


def _isa_objects() -> dict[str, list[Path]]:
    """Object files of the per-ISA variants from the newest build under build/ (CI's wheel build)."""
    found: dict[str, list[Path]] = {}
    dirs = sorted((ROOT / "build").glob("*/CMakeFiles"), key=lambda p: p.stat().st_mtime)
    for cmf in reversed(dirs):
        for isa_dir in cmf.glob("kernkit_*.dir"):  # kernkit_<source stem>_<isa>.dir
            isa = isa_dir.name.removesuffix(".dir").rsplit("_", 1)[-1]
            if isa in ("baseline", "avx2", "avx512"):
                found.setdefault(isa, []).extend(isa_dir.rglob("*.o"))
        if found:
            break
    return found


def test_isa_variants_share_no_code() -> None:
    """No function is defined out of line in two ISA variants: the linker would keep one copy,
    so the baseline path could run AVX-512 code (a crash on older CPUs) or vice versa."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    objs = _isa_objects()
    if len(objs) < 2:
        pytest.skip("no multi-ISA build under build/ (pip wheel . or pip install . makes one)")
    owners: dict[str, set[str]] = {}
    for isa, files in objs.items():
        for f in files:
            out = subprocess.run([nm, "--defined-only", str(f)], capture_output=True, text=True,
                                 check=True).stdout
            for line in out.splitlines():
                parts = line.split()
                # W/V: weak (inline, template) definitions, the ones the linker merges.
                if len(parts) == 3 and parts[1] in ("W", "V") and "personality" not in parts[2]:
                    owners.setdefault(parts[2], set()).add(isa)
    shared = sorted(s for s, isas in owners.items() if len(isas) > 1)
    demangled = subprocess.run(["c++filt"], input="\n".join(shared[:20]), capture_output=True,
                               text=True).stdout if shared and shutil.which("c++filt") else shared
    assert not shared, f"{len(shared)} symbols defined in several ISA variants, e.g.:\n{demangled}"
