"""The `kernkit` command: ``kernkit info``, ``kernkit bench [--quick] [--out DIR]``, ``--cmake-dir``."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernkit", description=__doc__)
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the folder of kernkitConfig.cmake (for find_package) and exit")
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser("info", help="version, compiler, SIMD, threads, CUDA, GPUs")
    p_info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_bench = sub.add_parser("bench", help="quick side-by-side benchmark of every family present")
    p_bench.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p_bench.add_argument("--out", default=None, help="folder for JSON and PNG results")
    p_bench.add_argument("--threads", type=int, default=1, help="kernkit threads (default 1)")
    args = parser.parse_args(argv)

    if args.cmake_dir:
        from ._runtime import cmake_dir

        print(cmake_dir())
        return 0
    if args.command == "info":
        from ._runtime import info

        facts = info()
        if args.json:
            print(json.dumps(facts, indent=2))
        else:
            width = max(map(len, facts))
            for k, v in facts.items():
                print(f"{k:<{width}}  {v}")
        return 0
    if args.command == "bench":
        from ._bench import run

        if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
            p_bench.error(f"--out {args.out!r} exists and is not a folder")
        print(run(quick=args.quick, out=args.out, threads=args.threads))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
