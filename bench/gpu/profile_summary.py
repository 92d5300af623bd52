"""One row per profiled kernel from Nsight Compute's CSV (bench/gpu/run.sh's profile step):
time, DRAM / L1 / SM throughput as a share of peak, registers, achieved occupancy and warp cycles
per issued instruction, i.e. whether a kernel is bound by memory, by instructions or by latency;
and where the run collected them (run.sh: ncu --metrics regex:smsp__average_warps_issue_stalled_...),
the three largest stall reasons in cycles per issued instruction (they sum to cycles/issue), i.e.
what the latency is spent waiting for (long_scoreboard: global memory; wait / short_scoreboard:
fixed and variable-latency math and shared memory; math_pipe_throttle: a full pipe).
Durations are at the clocks ncu locks (lower than the boost clock of the benchmarks' timings).

Usage: python bench/gpu/profile_summary.py [LABEL=]profile.csv ... --out DIR
(writes profile_gpu.json and profile_gpu.md; a label names the run a CSV came from).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re

METRICS = {  # ncu metric name -> column
    "Duration": "us",
    "DRAM Throughput": "DRAM %",
    "L1/TEX Cache Throughput": "L1 %",
    "Compute (SM) Throughput": "SM %",
    "Registers Per Thread": "regs",
    "Achieved Occupancy": "occupancy %",
    "Warp Cycles Per Issued Instruction": "cycles/issue",
}

STALL = re.compile(r"smsp__average_warps_issue_stalled_(\w+?)_per_issue_active\.ratio")
TO_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def short_name(kernel: str) -> str:
    """'void ns::<unnamed>::name<args>(params)' -> 'name<args>'."""
    head = kernel.split("(")[0].removeprefix("void ").strip()
    name = re.sub(r"^(?:[\w]+::|<unnamed>::)+", "", head)
    return re.sub(r"\b(?:kernkit|detail)::", "", name)


def read(path: str, label: str) -> list[dict]:
    rows: dict[str, dict] = {}
    with open(path, newline="") as fh:
        for r in csv.reader(fh):
            if len(r) < 15 or r[0] == "ID" or not r[12]:
                continue
            kid, kernel, block, grid, metric, unit, value = r[0], r[4], r[7], r[8], r[12], r[13], r[14]
            if kernel.startswith("void at::"):  # PyTorch's own elementwise kernels
                continue
            row = rows.setdefault(kid, {"run": label, "kernel": short_name(kernel), "grid": grid, "block": block})
            if metric in METRICS:
                v = float(value.replace(",", ""))
                row[METRICS[metric]] = v * TO_US.get(unit, 1.0) if metric == "Duration" else v
            elif m := STALL.fullmatch(metric):
                row.setdefault("stalls", {})[m.group(1)] = float(value.replace(",", ""))
    return list(rows.values())


def top_stalls(stalls: dict[str, float], n: int = 3) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(stalls.items(), key=lambda kv: -kv[1])[:n])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+", help="[LABEL=]path of an ncu --csv output")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    for spec in args.csv:
        label, _, path = spec.rpartition("=")
        rows += read(path, label or os.path.basename(path))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "profile_gpu.json"), "w") as fh:
        json.dump(rows, fh, indent=2)
    cols = ["run", "kernel", "grid", "block", *METRICS.values()]
    stalls = any("stalls" in r for r in rows)
    head = cols + (["top stalls (cycles per issue)"] if stalls else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r[c]:.1f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
        cells[1] = f"`{cells[1]}`"
        if stalls:
            cells.append(top_stalls(r.get("stalls", {})))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    with open(os.path.join(args.out, "profile_gpu.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
