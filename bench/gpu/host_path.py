"""Python-side cost of one CUDA call of kernkit, measured without a GPU (runs on the CPU).

torch CPU tensors are dressed as CUDA ones (kernkit._dispatch.device_of says cuda:0) and the
compiled CUDA entry points are replaced by stand-ins that do what nanobind does with each tensor
argument (an nb::ndarray import runs the tensor's Python ``__dlpack__``; an address is an int) and
launch nothing: what remains is kernkit's Python glue per call, the part of the host time that
the GPU benches (host_time) cannot separate from the launch. Shapes are small, so torch's own
allocations stay cheap (toeplitz's diagonal check runs as small CPU torch operations here; on a
GPU it is two launches and a wait for the device).

``--baseline DIR``: the same measurement, in a subprocess, with the kernkit Python package found in
DIR (e.g. an older commit's python/kernkit beside this build's _core), side by side.
Writes host_path.json and host_path.md into --out (default bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import timeit


def measure(repeat: int) -> dict[str, float]:
    import numpy as np
    import torch

    import kernkit
    from kernkit import _core, _dispatch
    from kernkit import quant as Q

    real_device_of = _dispatch.device_of

    def fake_device_of(a):
        if type(a).__module__.split(".")[0] == "torch":
            return _dispatch.Device("cuda", 0)
        return real_device_of(a)

    def binding(*args, **kw):
        for a in list(args) + list(kw.values()):
            if isinstance(a, torch.Tensor):
                a.__dlpack__()

    _dispatch.device_of = fake_device_of
    _dispatch.current_stream = lambda a: 1234
    _core.cuda_built = lambda: True
    for name in dir(_core):
        if name.endswith(("_cuda", "_cuda_ptr")) and name != "hashattn_workspace_cuda":
            setattr(_core, name, binding)
    _core.hashattn_workspace_cuda = lambda *a: 4096
    _core.toeplitz_cuda_fft_length = lambda n, f64: 1 << (2 * n - 1).bit_length()

    x, num, den = torch.randn(4, 768), torch.randn(1, 6), torch.randn(8, 4)
    g = torch.randn_like(x)
    qw = Q.quantize(np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32), 4, a=0.7,
                    granularity="group", group_size=64)
    xq = torch.randn(1, 512)
    qd = qw.to(xq)
    hq = torch.randint(0, 1 << 15, (1, 8, 1024), dtype=torch.int16)
    v = torch.randn(1, 8, 1024, 64)
    vs, xs = torch.rand(1000) * 10, torch.rand(1000) * 10
    tc, tr, tX = torch.randn(4096), torch.randn(4096), torch.randn(4096, 16)
    tr[0] = tc[0]
    top = kernkit.ToeplitzOperator(tc, tr)
    cases = {"log_iv": lambda: kernkit.log_iv(vs, xs),
             "rational": lambda: kernkit.rational(x, num, den),
             "rational_backward": lambda: kernkit.rational_backward(g, x, num, den),
             "quant.matmul": lambda: Q.matmul(xq, qd),
             "hashed_attention": lambda: kernkit.hashed_attention(hq, hq, v, 16),
             "toeplitz_matmul": lambda: kernkit.toeplitz_matmul(tc, tr, tX),
             "ToeplitzOperator @": lambda: top @ tX}
    out = {}
    for name, f in cases.items():
        f()
        out[name] = min(timeit.repeat(f, number=repeat, repeat=5)) / repeat * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--baseline", help="a directory holding an older kernkit package to compare")
    ap.add_argument("--baseline-label", help="what the baseline is, for the table")
    ap.add_argument("--repeat", type=int, default=3000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeat)))
        return
    # the versions alternate, three rounds, the best of each call kept (this machine is shared:
    # a slow spell must not fall on one version only)
    runs: dict[str, dict[str, float]] = {}
    for _ in range(3):
        for label, path in (("baseline", args.baseline), ("this", None)):
            if label == "baseline" and not path:
                continue
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
            res = subprocess.run([sys.executable, __file__, "--child", "--repeat", str(args.repeat)], env=env,
                                 capture_output=True, text=True, check=True)
            got = json.loads(res.stdout.strip().splitlines()[-1])
            runs[label] = {k: min(v, runs.get(label, {}).get(k, v)) for k, v in got.items()}
    import kernkit

    info = {"machine": kernkit.info()["cpu"], "python": platform.python_version(),
            "kernkit": kernkit.__version__, "baseline": args.baseline}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "host_path.json"), "w") as f:
        json.dump({"info": info, "us_per_call": runs}, f, indent=1)
    cols = list(runs)
    L = ["# Python glue per CUDA call (us, measured on the CPU; bench/gpu/host_path.py)", "",
         "torch CPU tensors dressed as CUDA ones, compiled entry points replaced by stand-ins that import "
         "each tensor argument as nanobind does (torch's __dlpack__) and launch nothing; the best of "
         f"3 rounds (versions alternating) of 5 x {args.repeat} calls. Python {info['python']}."
         + (f" Baseline: {args.baseline_label or 'the package in ' + args.baseline}." if args.baseline else ""), "",
         "| call | " + " | ".join(cols) + (" | ratio |" if len(cols) == 2 else ""),
         "|---|" + "---:|" * (len(cols) + (len(cols) == 2))]
    for name in runs["this"]:
        vals = [runs[c][name] for c in cols]
        L.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals)
                 + (f" | {vals[0] / vals[1]:.2f}x |" if len(vals) == 2 else ""))
    with open(os.path.join(args.out, "host_path.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
