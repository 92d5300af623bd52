"""Static instruction counts of compiled CUDA kernels, for changes made without a GPU at hand:
per kernel, its SASS instructions and FP64 ones (DFMA, DADD, DMUL), and the same for its main
loop, taken as the longest backward branch. A loop's count per element (divide by what one trip
handles) is what an instruction-bound kernel's time scales with; timings still need the GPU.

Usage: python bench/gpu/sass_loops.py FILE.cubin|FILE.o [--match REGEX] [--cuobjdump PATH]
       python bench/gpu/sass_loops.py --sass FILE.sass [--match REGEX]   (cuobjdump -sass output)
Build a cubin with e.g. nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_90 -Icpp/include
-Icuda -I<cuda include> -cubin -o rational.cubin cuda/rational.cu.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

FP64 = {"DFMA", "DADD", "DMUL"}
# "/*0a40*/   @!P0 DFMA.RM R2, R4, R6, R2 ;": address, optional predicate, opcode, operands
INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9]*)(?:\.[A-Z0-9_.]+)?\s*([^;]*);")


def kernels(sass: str) -> list[tuple[str, list[tuple[int, str, str]]]]:
    """(mangled name, [(address, opcode, operands)]) per function of cuobjdump -sass output."""
    out = []
    for part in re.split(r"\n\s*Function : ", sass)[1:]:
        name, body = part.split("\n", 1) if "\n" in part else (part, "")
        out.append((name.strip(), [(int(a, 16), op, args) for a, op, args in INSTR.findall(body)]))
    return out


def main_loop(ins: list[tuple[int, str, str]]) -> list[str]:
    """Opcodes between the target and the source of the longest backward BRA (empty if none)."""
    lo = hi = -1
    for addr, op, args in ins:
        m = re.search(r"0x([0-9a-f]+)", args) if op == "BRA" else None
        if m and int(m.group(1), 16) < addr and addr - int(m.group(1), 16) > hi - lo:
            lo, hi = int(m.group(1), 16), addr
    return [op for addr, op, _ in ins if lo <= addr <= hi]


def rows(sass: str, match: str) -> list[dict]:
    pat = re.compile(match)
    res = []
    for name, ins in kernels(sass):
        if not pat.search(name):
            continue
        ops = [op for _, op, _ in ins]
        loop = main_loop(ins)
        res.append({"kernel": name, "instructions": len(ops), "fp64": sum(o in FP64 for o in ops),
                    "loop": len(loop), "loop_fp64": sum(o in FP64 for o in loop)})
    return res


def find_cuobjdump(given: str | None) -> str:
    for c in (given, shutil.which("cuobjdump")):
        if c:
            return c
    raise SystemExit("cuobjdump not found: pass --cuobjdump (it ships with the CUDA toolkit)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary", nargs="?", help="a .cubin or an object file with device code")
    p.add_argument("--sass", help="read cuobjdump -sass output from this file instead")
    p.add_argument("--match", default=".", help="regex on the mangled kernel names")
    p.add_argument("--cuobjdump")
    a = p.parse_args(argv)
    if a.sass:
        with open(a.sass) as fh:
            sass = fh.read()
    elif a.binary:
        sass = subprocess.run([find_cuobjdump(a.cuobjdump), "-sass", a.binary], check=True,
                              capture_output=True, text=True).stdout
    else:
        p.error("give a binary or --sass")
    print("| kernel | instructions | FP64 | main loop | loop FP64 |\n|---|---:|---:|---:|---:|")
    for r in rows(sass, a.match):
        print(f"| `{r['kernel']}` | {r['instructions']} | {r['fp64']} | {r['loop']} | {r['loop_fp64']} |")


if __name__ == "__main__":
    main()
