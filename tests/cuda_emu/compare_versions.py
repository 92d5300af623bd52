#!/usr/bin/env python3
"""Are two versions of cuda/hashattn.cu bit-for-bit the same on the host emulator?

Usage: python tests/cuda_emu/compare_versions.py [REV]  (default HEAD): converts REV's and the
working tree's cuda/hashattn.cu with make_emu.py, builds them beside compare_main.cpp and runs
it (exit status 0 when every output is identical). A few minutes; a developer tool, not a test.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from make_emu import convert  # noqa: E402


def main() -> int:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    old = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:cuda/hashattn.cu"], check=True,
                         capture_output=True, text=True).stdout
    new = (ROOT / "cuda" / "hashattn.cu").read_text()
    nvcc = shutil.which("nvcc")
    cands = [Path(nvcc).resolve().parents[1]] if nvcc else []
    cands += [Path(c) for c in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda") if c]
    inc = next((c / "include" for c in cands if (c / "include" / "cuda_fp16.h").exists()), None)
    if inc is None:
        sys.exit("compare_versions.py: the CUDA headers (cuda_fp16.h) were not found")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "old.cpp").write_text(convert(old).replace("namespace emu_cuda", "namespace emu_old")
                                   .replace("emu_cuda::workspace_bytes", "emu_old::workspace_bytes"))
        (t / "new.cpp").write_text(convert(new))
        exe = t / "compare"
        subprocess.run([os.environ.get("CXX", "g++"), "-std=c++20", "-O1", f"-I{HERE}",
                        f"-I{ROOT / 'cpp' / 'include'}", f"-I{ROOT / 'cuda'}", f"-I{inc}",
                        "-Wno-deprecated-declarations", str(HERE / "compare_main.cpp"), str(t / "old.cpp"),
                        str(t / "new.cpp"), "-o", str(exe), "-lpthread"], check=True)
        return subprocess.run([str(exe)]).returncode


if __name__ == "__main__":
    sys.exit(main())
