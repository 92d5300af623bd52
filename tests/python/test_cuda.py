"""CUDA paths, run where a GPU is present (bench/gpu/run.sh runs these on the lent GPU)."""

from __future__ import annotations

import numpy as np
import pytest

import kernkit

pytestmark = pytest.mark.skipif(not kernkit.cuda_available(), reason="no CUDA build or no GPU")

FUNCS = ["log_iv", "log_kv", "log_ive", "log_kve", "bessel_iv_ratio", "dlog_iv", "dlog_kv"]


def _points(n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    v = np.exp(rng.uniform(np.log(1e-3), np.log(1e5), n))
    x = np.exp(rng.uniform(np.log(1e-5), np.log(1e6), n))
    return v, x


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Max of |a - b| / max(1, |b|) (relative, absolute near zero); equal infinities count as 0."""
    same = a == b
    d = np.abs(a - b) / np.maximum(np.abs(b), 1.0)
    return float(np.max(np.where(same, 0.0, d), initial=0.0))


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_cuda_matches_cpu(name: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    f = getattr(kernkit, name)
    v, x = (a.astype(dtype) for a in _points())
    ref = f(v, x)
    tv, tx = torch.from_numpy(v).cuda(), torch.from_numpy(x).cuda()
    out = f(tv, tx)
    assert isinstance(out, torch.Tensor) and out.is_cuda and str(out.dtype).endswith(dtype)
    got = out.cpu().numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    # Same scalar code; nvcc contracts a*b+c into FMA (--fmad=true) where the host build does
    # not, so a few ulp apart (2.03e-15 seen for log_ive on an H100). Accuracy itself is checked
    # against Arb on the GPU by test_special.py's test_accuracy_* [cuda].
    assert _max_rel(got, ref) <= (4e-15 if dtype == "float64" else 4e-7)


@pytest.mark.parametrize("name", ["log_iv", "log_kv"])
def test_cupy_matches_cpu_and_broadcasts(name: str) -> None:
    cp = pytest.importorskip("cupy")
    f = getattr(kernkit, name)
    v = np.array([0.0, 0.5, 10.0, 1e4])[:, None]
    x = np.array([1e-3, 1.0, 1e3])[None, :]
    out = f(cp.asarray(v), cp.asarray(x))
    assert isinstance(out, cp.ndarray) and out.shape == (4, 3)
    assert _max_rel(cp.asnumpy(out), f(v, x)) <= 2e-15


def test_torch_non_contiguous_and_python_scalar() -> None:
    torch = pytest.importorskip("torch")
    x = torch.linspace(0.1, 100, 2000, dtype=torch.float64, device="cuda")[::2]
    out = kernkit.log_iv(2.5, x)
    np.testing.assert_allclose(out.cpu().numpy(), kernkit.log_iv(2.5, x.cpu().numpy()), rtol=1e-15)


def test_mixed_devices_refused() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="never copies between devices"):
        kernkit.log_iv(torch.ones(3, device="cuda"), np.ones(3))


def test_runs_on_the_callers_stream() -> None:
    torch = pytest.importorskip("torch")
    v, x = (torch.from_numpy(a).cuda() for a in _points(1 << 20))
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        out = kernkit.log_kv(v, x)
    s.synchronize()
    ref = kernkit.log_kv(v.cpu().numpy(), x.cpu().numpy())
    assert _max_rel(out.cpu().numpy(), ref) <= 2e-15


def test_address_paths_run_on_the_callers_stream() -> None:
    """rational (forward and backward), quant.matmul and hashed_attention launch through device
    addresses on the handle _dispatch.current_stream gives: on a side stream whose inputs are only
    written after a long sleep, a launch on any other stream would read the zeros before them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((64, 256))
    num, den = (rng.standard_normal(s) * 0.3 for s in ((1, 6), (8, 4)))
    qw = kernkit.quant.quantize(rng.standard_normal((96, 256)).astype(np.float32), 4,
                                granularity="group", group_size=64)
    hq = rng.integers(0, 1 << 16, (2, 100)).astype(np.uint16)
    vv = rng.standard_normal((2, 100, 32)).astype(np.float32)
    dev = {"device": "cuda"}
    x, g = torch.zeros(64, 256, dtype=torch.float64, **dev), torch.zeros(64, 256, dtype=torch.float64, **dev)
    x32, v = torch.zeros(3, 256, **dev), torch.zeros(2, 100, 32, **dev)
    srcs = [torch.from_numpy(a).cuda() for a in (xs, xs[::-1].copy(), xs[:3].astype(np.float32), vv)]
    tn, td = torch.from_numpy(num).cuda(), torch.from_numpy(den).cuda()
    th = torch.from_numpy(hq.astype(np.int16)).cuda()
    qd = qw.to(x32)
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch.cuda._sleep(100_000_000)  # tens of ms on this stream only
        for dst, src in zip((x, g, x32, v), srcs):
            dst.copy_(src)
        y = kernkit.rational(x, tn, td)
        dx, dnum, dden = kernkit.rational_backward(g, x, tn, td)
        yq = kernkit.quant.matmul(x32, qd)
        o = kernkit.hashattn.hashed_attention(th, th, v, 16)
    s.synchronize()
    ref = kernkit.rational_backward(xs[::-1].copy(), xs, num, den)
    np.testing.assert_allclose(y.cpu().numpy(), kernkit.rational(xs, num, den), rtol=1e-13)
    for a, b in zip((dx, dnum, dden), ref):
        np.testing.assert_allclose(a.cpu().numpy(), b, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(yq.cpu().numpy(), kernkit.quant.matmul(xs[:3].astype(np.float32), qw),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(o.cpu().numpy(), kernkit.hashattn.hashed_attention(hq, hq, vv, 16),
                               rtol=1e-5, atol=1e-5)


def _captured(torch, run, inputs):  # type: ignore[no-untyped-def]
    """run() captured in a CUDA graph (after warm-up calls on a side stream, which create the
    cached plans), replayed on new values copied into `inputs`; returns (replayed, eager)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            run()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = run()
    for a in inputs:
        a.copy_(torch.randn_like(a) if a.is_floating_point() else a)
    g.replay()
    torch.cuda.synchronize()
    return out, run()


def test_calls_capture_in_cuda_graphs() -> None:
    """Every family's CUDA call can be captured in a CUDA graph (no host read-back, no sync) and
    the replay computes what an eager call on the same inputs does; toeplitz_matmul skips its
    c[0] == r[0] check under capture (that check reads the values back)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    dev = {"device": "cuda"}
    v, x = (torch.rand(4096, **dev) * 50 for _ in range(2))
    xr, gr = torch.randn(256, 768, **dev), torch.randn(256, 768, **dev)
    num, den = torch.randn(1, 6, **dev) * 0.3, torch.randn(8, 4, **dev) * 0.3
    qw = kernkit.quant.quantize(rng.standard_normal((512, 1024)).astype(np.float32), 4,
                                granularity="group", group_size=64)
    xq = torch.randn(1, 1024, **dev)
    qd = qw.to(xq)
    th = torch.from_numpy(rng.integers(0, 1 << 16, (2, 300)).astype(np.int16)).cuda()
    vh = torch.randn(2, 300, 32, **dev)
    c, r, X = torch.randn(512, **dev), torch.randn(512, **dev), torch.randn(512, 64, **dev)
    with torch.no_grad():
        r[0] = c[0]
    T = kernkit.ToeplitzOperator(c, r)
    runs = {
        "log_iv": (lambda: kernkit.log_iv(v, x), [v, x]),
        "rational": (lambda: kernkit.rational(xr, num, den), [xr]),
        "rational_backward": (lambda: kernkit.rational_backward(gr, xr, num, den), [gr, xr]),
        "quant.matmul": (lambda: kernkit.quant.matmul(xq, qd), [xq]),
        "hashed_attention": (lambda: kernkit.hashattn.hashed_attention(th, th, vh, 16), [vh]),
        "toeplitz_matmul": (lambda: kernkit.toeplitz_matmul(c, r, X), [X]),
        "ToeplitzOperator": (lambda: T @ X, [X]),
    }
    for name, (run, inputs) in runs.items():
        got, want = _captured(torch, run, inputs)
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert torch.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True), name


def test_rpe_captures_in_cuda_graphs() -> None:
    """rpe_attention and rpe_attention_decay (lambda a CUDA tensor: its range check, which reads
    it back, is skipped under capture) in a CUDA graph, replayed = eager."""
    torch = pytest.importorskip("torch")
    dev = {"device": "cuda"}
    q, k, vv = (torch.randn(1, 2, 128, 16, **dev) for _ in range(3))
    b, lam = torch.randn(2, 255, **dev), torch.tensor([0.9, 0.95], **dev)
    W = kernkit.random_projection(16, 32, seed=0)
    for name, run in (("bias", lambda: kernkit.rpe_attention(q, k, vv, b, projection=W)),
                      ("decay", lambda: kernkit.rpe_attention_decay(q, k, vv, lam, projection=W))):
        got, want = _captured(torch, run, [q, k, vv])
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True), name


def test_special_autograd_on_cuda() -> None:
    """kernkit.log_iv & co. on CUDA tensors that require grad: the gradient in x equals the
    CPU one (both are the x-derivative functions' values)."""
    torch = pytest.importorskip("torch")
    v, x = _points(4096)
    for name in ("log_iv", "log_kve", "dlog_kv"):  # (dlog_kv's derivative: the Bessel equation)
        f = getattr(kernkit, name)
        grads = []
        for dev in ("cpu", "cuda"):
            xt = torch.from_numpy(x).to(dev).requires_grad_()
            (g,) = torch.autograd.grad(f(torch.from_numpy(v).to(dev), xt).sum(), xt)
            grads.append(g.cpu().numpy())
        # (the Bessel equation's terms cancel by up to ~x: compared where x, v <= 100)
        ok = (x <= 100) & (v <= 100) if name == "dlog_kv" else np.ones(x.shape, bool)
        assert _max_rel(grads[1][ok], grads[0][ok]) <= (1e-10 if name == "dlog_kv" else 1e-13), name
