"""Run a family's CPU kernels on arrays that each end right before an unreadable page.

``python guarded_run.py FAMILY DTYPE`` computes the family's results on ordinary arrays and on
copies placed so that the byte after each array's last element is in a page with no access
(mprotect PROT_NONE), and exits non-zero unless both agree bit for bit. A kernel that reads past
any of its inputs (an unmasked vector load in a tail, an off-by-one) faults; where a function
takes out=, a write past it faults too (a page with no access also refuses writes). The tests
run this in a subprocess, so a fault fails one test rather than the whole run.
"""
from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np

import kernkit

_keep = []  # the mappings stay alive as long as the arrays


def guarded(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose last byte is followed by an unreadable page."""
    a = np.ascontiguousarray(a)
    page = mmap.PAGESIZE
    npages = (a.nbytes + page - 1) // page + 1
    m = mmap.mmap(-1, npages * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(base + (npages - 1) * page, page, 0) != 0:
        raise OSError("mprotect failed")
    out = np.frombuffer(m, dtype=a.dtype, count=a.size, offset=(npages - 1) * page - a.nbytes)
    out = out.reshape(a.shape)
    out[...] = a
    _keep.append(m)
    return out


def _same(got, want, what):
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        if not np.array_equal(np.asarray(g), np.asarray(w), equal_nan=True):
            raise SystemExit(f"{what}: results differ on guarded inputs")


def run(family: str, dtype: str) -> None:
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    if family == "special":
        for n in (1, 7, 8, 9, 513, 1000):  # block loop tails
            v = np.concatenate([rng.uniform(0, 30, n), rng.uniform(0, 1e4, n)]).astype(dt)
            x = np.concatenate([rng.uniform(1e-3, 30, n), rng.uniform(0, 1e4, n)]).astype(dt)
            for name in ("log_iv", "log_ive", "log_kv", "log_kve", "bessel_iv_ratio", "dlog_iv", "dlog_kv"):
                f = getattr(kernkit, name)
                out = guarded(np.zeros(v.shape, dt))  # and writes nothing past out=
                _same(f(guarded(v), guarded(x), out=out), f(v, x), f"special {name} n={n}")
    elif family == "rational":
        for shape, gn, gd in (((3, 5, 24), 1, 8), ((2, 7, 13), 13, 1), ((1, 1, 72), 4, 8)):
            x = rng.standard_normal(shape).astype(dt)
            num = rng.standard_normal((gn, 6)).astype(dt)
            den = rng.standard_normal((gd, 4)).astype(dt)
            g = rng.standard_normal(shape).astype(dt)
            for form in ("A", "B", "C"):
                dd = den if form != "C" else rng.standard_normal((gd, 5)).astype(dt)
                _same(kernkit.rational(guarded(x), guarded(num), guarded(dd), form, out=guarded(np.zeros(shape, dt))),
                      kernkit.rational(x, num, dd, form), f"rational {shape} {form}")
                _same(kernkit.rational_backward(guarded(g), guarded(x), guarded(num), guarded(dd), form),
                      kernkit.rational_backward(g, x, num, dd, form), f"rational_backward {shape} {form}")
    elif family == "fft":
        from kernkit import fft
        for n in (1, 2, 3, 5, 8, 15, 16, 17, 31, 97, 128, 1000, 1024):
            a = rng.standard_normal((3, n)).astype(dt)
            _same(fft.rfft(guarded(a)), fft.rfft(a), f"rfft n={n}")
            s = fft.rfft(a)
            _same(fft.irfft(guarded(s), n), fft.irfft(s, n), f"irfft n={n}")
    elif family == "toeplitz":
        for n, k in ((1, 1), (5, 3), (17, 4), (64, 9), (300, 5)):
            c = rng.standard_normal(n).astype(dt)
            r = rng.standard_normal(n).astype(dt)
            X = rng.standard_normal((n, k)).astype(dt)
            r[0] = c[0]
            for causal in (False, True):
                _same(kernkit.toeplitz_matmul(guarded(c), guarded(r), guarded(X), causal=causal),
                      kernkit.toeplitz_matmul(c, r, X, causal=causal), f"toeplitz n={n} causal={causal}")
    elif family == "hashattn":
        from kernkit import hashattn
        for n, bits, d in ((1, 5, 3), (7, 16, 8), (33, 33, 5), (65, 64, 16)):
            hq = hashattn.pack(np.where(rng.standard_normal((2, n, bits)) >= 0, 1, -1).astype(np.int8))
            hk = hashattn.pack(np.where(rng.standard_normal((2, n, bits)) >= 0, 1, -1).astype(np.int8))
            v = rng.standard_normal((2, n, d)).astype(dt)
            for causal in (False, True):
                _same(kernkit.hashed_attention(guarded(hq), guarded(hk), guarded(v), bits, causal=causal,
                                               out=guarded(np.zeros(v.shape, dt))),
                      kernkit.hashed_attention(hq, hk, v, bits, causal=causal), f"hashattn n={n} b={bits}")
    elif family == "quant":
        from kernkit import quant as Q
        for bits, cols, g in ((4, 576, 64), (4, 512, 64), (2, 832, 64), (3, 1088, 64), (3, 1024, 32),
                              (4, 512, 512), (3, 1280, 32), (4, 40, 8), (5, 64, 16), (8, 48, 16)):
            W = (0.02 * rng.standard_normal((7, cols))).astype(np.float32)
            qw = Q.quantize(W, bits, a=0.7, granularity="group", group_size=g)
            for batch in (1, 3, 6):
                x = rng.standard_normal((batch, cols)).astype(dt)
                want = Q.matmul(x, qw)
                lut, ds = qw.kernel_tables(dt)
                gq = Q.PowerQuantized(guarded(qw.packed), qw.scales, qw.a, qw.bits, qw.shape, qw.group_size,
                                      qw.granularity, qw.full_range, dict(qw.info))
                gq._cache[("cpu", dt.name)] = (guarded(lut), guarded(ds))
                _same(Q.matmul(guarded(x), gq), want, f"quant W{bits} cols={cols} g={g} batch={batch}")
    else:
        raise SystemExit(f"unknown family {family!r}")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
