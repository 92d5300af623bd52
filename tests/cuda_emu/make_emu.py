#!/usr/bin/env python3
"""Turn a cuda/*.cu file into host C++ that runs on the emulator in emu.hpp.

Usage: python make_emu.py SRC.cu OUT.cpp. Kernel launches ``k<<<g, b, smem, stream>>>(args);``
become ``emu::launch(dim3(g), dim3(b), smem, [&] { k(args); });``, the file's namespace
kernkit::cuda::NAME becomes emu_cuda (so the real CPU library can be linked beside it) and
the dynamic shared memory declaration points at the emulator's buffer. In hashattn.cu the
grid-size target kTargetBlocks becomes a variable (emu_cuda::set_target_blocks) so that small
test problems can also run with few, long blocks (many rows per warp); in rational.cu the
forward's grid cap kForwardMaxBlocks likewise (emu_cuda::set_forward_max_blocks: several
grid-stride steps per thread).
"""

import re
import sys


def convert(s: str) -> str:
    s = s.replace('#include "check.cuh"\n', '#include "emu.hpp"\n#include "check.cuh"\n')
    ns = re.search(r"namespace (kernkit::cuda(?:::\w+)?) \{", s).group(1)
    name = ns.split("::")[-1]
    extra = {"hashattn": "\nusing kernkit::cuda::hashattn::Dtype;",
             "cuda": "\nusing kernkit::cuda::RationalDtype;" if "RationalDtype" in s else ""}.get(name, "")
    s = s.replace(f"namespace {ns} {{", "namespace emu_cuda {\nusing namespace kernkit;\nusing std::min;" + extra)
    s = s.replace(f"}}  // namespace {ns}", "}  // namespace emu_cuda")
    if name == "hashattn":
        s = s.replace("}  // namespace emu_cuda",
                      "void set_target_blocks(int n) { kTargetBlocks = n; }\n}  // namespace emu_cuda")
        if "constexpr int kTargetBlocks =" not in s:
            raise SystemExit("make_emu.py: kTargetBlocks not found")
        s = s.replace("constexpr int kTargetBlocks =", "int kTargetBlocks =")
    if name == "cuda" and "RationalDtype" in s:  # rational.cu: the forward's grid cap, for grid-stride steps
        if "constexpr int kForwardMaxBlocks =" not in s:
            raise SystemExit("make_emu.py: kForwardMaxBlocks not found")
        s = s.replace("constexpr int kForwardMaxBlocks =", "int kForwardMaxBlocks =")
        s = s.replace("}  // namespace emu_cuda",
                      "void set_forward_max_blocks(int n) { kForwardMaxBlocks = n; }\n}  // namespace emu_cuda")
    s = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?unsigned char (\w+)\[\];",
               r"unsigned char* \1 = emu::dyn_smem.data();", s)
    s = s.replace("if (ws_bytes < workspace_bytes(", "if (ws_bytes < emu_cuda::workspace_bytes(")
    pat = re.compile(r"([A-Za-z_][\w<>, :-]*?)<<<(.*?)>>>\((.*?)\);", re.S)

    def rep(m: re.Match) -> str:
        name, cfg, args = m.group(1).strip(), m.group(2), m.group(3)
        parts = [p.strip() for p in re.split(r",(?![^()]*\))", cfg)]
        smem = parts[2] if len(parts) > 2 else "0"
        return f"emu::launch(dim3({parts[0]}), dim3({parts[1]}), {smem}, [&] {{ {name}({args}); }});"

    out = pat.sub(rep, s)
    if "<<<" in out:
        raise SystemExit("make_emu.py: a kernel launch was not converted")
    return out


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(convert(text))
