"""PyTorch front ends: group-rational activations (KAT's GR-KAN, PAU), kernelized attention with
relative positional encoding (``rpe_attention``, ``rpe_attention_decay``) and hashed attention.

``Rational`` is an ``nn.Module`` with KAT's defaults (degrees (5, 4), form A, one numerator
shared by all channels, 8 denominator groups, GELU init), and ``RationalFunction`` the autograd
Function behind it. Both call kernkit's CPU or CUDA kernels on the tensors' own memory
(contiguous inputs are not copied). ``hashed_attention`` is the trainable EcoFormer attention
(kernkit's kernel forward; gradients w.r.t. the values and, by the straight-through estimator,
the real-valued pre-sign codes), ``kernel_hash_project`` the differentiable ``KernelHash``
projection. ``SpecialFunction`` makes ``kernkit.log_iv`` and the other special functions
differentiable in x when they are given tensors that require grad. torch is an optional dependency: ``import kernkit`` works without it; only this
module needs it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import torch

import kernkit
from kernkit._rational import rational_init, variance_gain

HashMode = Literal["consistent", "ecoformer"]  # as kernkit.hashed_attention's `mode`

__all__ = ["HashedAttention", "HashedAttentionFunction", "Rational", "RationalFunction",
           "RPEAttentionFunction", "RPEDecayAttentionFunction", "SpecialFunction", "hashed_attention",
           "kernel_hash_project", "pack_codes", "rational", "rpe_attention", "rpe_attention_decay"]


class RationalFunction(torch.autograd.Function):
    """``y = rational(x, num, den, form, channel_axis)`` with kernkit's backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, num: torch.Tensor, den: torch.Tensor,
                form: str = "A", channel_axis: int = -1) -> torch.Tensor:
        x, num, den = x.detach(), num.detach(), den.detach()
        ctx.save_for_backward(x, num, den)
        ctx.form = form
        ctx.channel_axis = channel_axis
        return cast(torch.Tensor, kernkit.rational(x, num, den, form, channel_axis=channel_axis))

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        x, num, den = ctx.saved_tensors
        dx, dnum, dden = kernkit.rational_backward(grad_out.detach().to(x.dtype), x, num, den,
                                                   ctx.form, channel_axis=ctx.channel_axis)
        return (dx if ctx.needs_input_grad[0] else None,
                dnum if ctx.needs_input_grad[1] else None,
                dden if ctx.needs_input_grad[2] else None, None, None)


def rational(x: torch.Tensor, num: torch.Tensor, den: torch.Tensor, form: str = "A",
             channel_axis: int = -1) -> torch.Tensor:
    """Differentiable group-rational activation (see `kernkit.rational`)."""
    # (torch 2.13 leaves Function.apply untyped, 2.14 returns Any)
    return RationalFunction.apply(x, num, den, form, channel_axis)  # type: ignore[no-any-return, no-untyped-call, unused-ignore]


class Rational(torch.nn.Module):
    """Group-rational activation ``P(x)/Q(x)`` per channel group (KAT's ``KAT_Group``).

    Parameters
    ----------
    num_groups : int
        Denominator groups G (KAT: 8); the channel count must be divisible by it.
    mode : str
        Initialization: identity, relu, leaky_relu, gelu, swish, tanh, sigmoid (fitted on
        [-3, 3] in ``form``, see `kernkit.rational_init`).
    degrees : (int, int)
        Numerator degree m and denominator degree n (KAT: (5, 4)).
    form : {"A", "B", "C"}
        Denominator form (KAT's kernels: "A").
    num_groups_numerator : int
        Numerator groups (KAT: 1, one numerator shared by all channels).
    channel_axis : int
        -1 for (..., D) inputs (KAT_Group); 1 for (B, C, H, W) (KAT_Group2D).

    Parameters of the module: ``weight_numerator`` (num_groups_numerator, m+1) and
    ``weight_denominator`` (num_groups, n), or (num_groups, n+1) for form "C". Under autocast
    the input keeps its dtype on CUDA (float16/bfloat16 with float32 math); coefficients stay
    float32.
    """

    def __init__(self, num_groups: int = 8, mode: str = "gelu", degrees: tuple[int, int] = (5, 4),
                 form: str = "A", num_groups_numerator: int = 1, channel_axis: int = -1,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if num_groups < 1 or num_groups_numerator < 1:
            raise ValueError("num_groups and num_groups_numerator must be >= 1")
        a, b = rational_init(mode, degrees, form)
        kw = {"device": device, "dtype": dtype or torch.float32}
        self.num_groups = num_groups
        self.num_groups_numerator = num_groups_numerator
        self.mode = mode
        self.degrees = tuple(degrees)
        self.form = form.upper()
        self.channel_axis = channel_axis
        self.weight_numerator = torch.nn.Parameter(
            torch.tensor(np.tile(a, (num_groups_numerator, 1)), **kw))
        self.weight_denominator = torch.nn.Parameter(
            torch.tensor(np.tile(b, (num_groups, 1)), **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_dtype = x.dtype
        if x.device.type == "cpu" and x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # the CPU kernels are float32/float64; the result is cast back
        if x.dtype == torch.float64:
            cdt = torch.float64
        else:
            cdt = x.dtype if x.device.type == "cpu" else torch.float32
        num: torch.Tensor = self.weight_numerator.to(cdt)
        den: torch.Tensor = self.weight_denominator.to(cdt)
        y = rational(x, num, den, self.form, self.channel_axis)
        return y if y.dtype == in_dtype else y.to(in_dtype)

    def gain(self) -> float | np.ndarray:
        """1/E[F(x)^2], x ~ N(0,1), per denominator group (for a variance-preserving init)."""
        return variance_gain(self.weight_numerator.detach().cpu().double().numpy(),
                             self.weight_denominator.detach().cpu().double().numpy(), self.form)

    def extra_repr(self) -> str:
        return (f"num_groups={self.num_groups}, mode={self.mode!r}, degrees={self.degrees}, "
                f"form={self.form!r}, num_groups_numerator={self.num_groups_numerator}")


def _rpe_forward(ctx: Any, name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 coef: torch.Tensor, kw: dict[str, Any]) -> torch.Tensor:
    """Forward of the two RPE Functions: kernkit.rpe's `name` ("bias" or "decay") -> (out, den)."""
    from kernkit import rpe as _rpe

    q, k, v, coef = q.detach(), k.detach(), v.detach(), coef.detach()
    out, den = getattr(_rpe, f"_forward_{name}")(q, k, v, coef, **kw)
    ctx.save_for_backward(q, k, v, coef, out, den)
    ctx.kw = kw
    return out  # type: ignore[no-any-return]


def _rpe_backward(ctx: Any, backward: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
    q, k, v, coef, out, den = ctx.saved_tensors
    dq, dk, dv, dc = backward(grad_out.detach().to(q.dtype).contiguous(), q, k, v, coef,
                              saved=(out, den), **ctx.kw)
    need = ctx.needs_input_grad
    return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
            dc.to(coef.dtype) if need[3] else None, None)


class RPEAttentionFunction(torch.autograd.Function):
    """``kernkit.rpe_attention`` with gradients for q, k, v and rpe_bias (hand-derived,
    O(m d n log n), see `kernkit.rpe_attention_backward`)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rpe_bias: torch.Tensor,
                kw: dict[str, Any]) -> torch.Tensor:
        return _rpe_forward(ctx, "bias", q, k, v, rpe_bias, kw)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        return _rpe_backward(ctx, kernkit.rpe_attention_backward, grad_out)


class RPEDecayAttentionFunction(torch.autograd.Function):
    """``kernkit.rpe_attention_decay`` with gradients for q, k, v and lam (all O(n))."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lam: torch.Tensor,
                kw: dict[str, Any]) -> torch.Tensor:
        return _rpe_forward(ctx, "decay", q, k, v, lam, kw)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        return _rpe_backward(ctx, kernkit.rpe_attention_decay_backward, grad_out)


def _rpe_apply(fn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, coef: torch.Tensor,
               kw: dict[str, Any]) -> torch.Tensor:
    """fn.apply, with float16 / bfloat16 inputs (e.g. under autocast) computed in float32 (the
    exponentials and the FFT need it) and the output cast back; coef follows q's dtype."""
    if q.dtype in (torch.float16, torch.bfloat16):
        out = fn.apply(q.float(), k.float(), v.float(), coef.float(), kw)
        return out.to(q.dtype)  # type: ignore[no-any-return]
    return fn.apply(q, k, v, coef.to(q.dtype), kw)  # type: ignore[no-any-return]


def rpe_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rpe_bias: torch.Tensor,
                  num_features: int | None = None, causal: bool = False, normalize_qk: bool = False,
                  seed: int = 0, projection: Any = None, key_padding_mask: Any = None,
                  feature_chunk: int | None = None, method: str = "auto") -> torch.Tensor:
    """Differentiable `kernkit.rpe_attention` (grads for q, k, v, rpe_bias; CPU or CUDA).

    float16 / bfloat16 inputs (e.g. under autocast) are computed in float32 (the exponentials
    and the FFT need it) and the output is cast back; rpe_bias follows q's dtype."""
    kw = dict(num_features=num_features, causal=causal, normalize_qk=normalize_qk, seed=seed,
              projection=projection, key_padding_mask=key_padding_mask, feature_chunk=feature_chunk,
              method=method)
    return _rpe_apply(RPEAttentionFunction, q, k, v, rpe_bias, kw)


def rpe_attention_decay(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lam: Any,
                        num_features: int | None = None, causal: bool = False,
                        normalize_qk: bool = False, seed: int = 0, projection: Any = None,
                        key_padding_mask: Any = None, feature_chunk: int | None = None,
                        method: str = "auto") -> torch.Tensor:
    """Differentiable `kernkit.rpe_attention_decay` (grads for q, k, v and a tensor lam);
    float16 / bfloat16 inputs are computed in float32 and the output cast back."""
    if not isinstance(lam, torch.Tensor):
        lam = torch.tensor(float(lam), dtype=q.dtype, device=q.device)
    kw = dict(num_features=num_features, causal=causal, normalize_qk=normalize_qk, seed=seed,
              projection=projection, key_padding_mask=key_padding_mask, feature_chunk=feature_chunk,
              method=method)
    return _rpe_apply(RPEDecayAttentionFunction, q, k, v, lam, kw)


# ----------------------------------------------------------------------------------------------
# EcoFormer hashed attention
# ----------------------------------------------------------------------------------------------

def pack_codes(z: torch.Tensor) -> torch.Tensor:
    """Packed code words (..., n) of real-valued codes z (..., n, bits): bit r set iff
    z[..., r] >= 0. Word dtype by bits: uint8 (<= 8), int16 / int32 / int64 (the signed type of
    the width, same bits; torch lacks unsigned arithmetic there) -- accepted by
    `kernkit.hashed_attention`."""
    bits = int(z.shape[-1])
    kernkit.hashattn._check_bits(bits)
    if torch.isnan(z).any():
        raise ValueError("argument 'z' contains NaN")
    shifts = torch.arange(bits, device=z.device, dtype=torch.int64)
    w = ((z >= 0).to(torch.int64) << shifts).sum(-1)  # distinct powers of two: wraps like OR
    if bits <= 8:
        return w.to(torch.uint8)
    for width, dt in ((16, torch.int16), (32, torch.int32)):
        if bits <= width:
            w = torch.where(w >= (1 << (width - 1)), w - (1 << width), w)
            return w.to(dt)
    return w


def _signs(z: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.where(z >= 0, 1.0, -1.0).to(dtype)


def _linear_form(sq: torch.Tensor, sk: torch.Tensor, v: torch.Tensor, c: float, causal: bool,
                 mode: HashMode, kmask: torch.Tensor | None = None) -> torch.Tensor:
    """Float reference of hashed attention in its O(n b d) form (differentiable by autograd);
    kmask (..., n_k) 1/0 marks the valid keys (non-causal)."""
    if kmask is not None:
        skm, vm = sk * kmask.unsqueeze(-1), v * kmask.unsqueeze(-1)
        ctx = torch.einsum("...nb,...nd->...bd", skm, vm)
        num = torch.einsum("...nb,...bd->...nd", sq, ctx)
        nvalid = kmask.sum(-1, keepdim=True)                          # (..., 1)
        den = torch.einsum("...nb,...b->...n", sq, skm.sum(-2)) + c * nvalid
        vterm = vm.sum(-2, keepdim=True) if mode == "consistent" else v
        return (num + c * vterm) / den.unsqueeze(-1)
    if causal:
        ctx = torch.cumsum(sk.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)  # (..., n, b, d)
        num = torch.einsum("...nb,...nbd->...nd", sq, ctx)
        ksum = torch.cumsum(sk, dim=-2)                                  # (..., n, b)
        cnt = torch.arange(1, v.shape[-2] + 1, device=v.device, dtype=v.dtype)
        den = (sq * ksum).sum(-1) + c * cnt
        vterm = torch.cumsum(v, dim=-2) if mode == "consistent" else v
    else:
        ctx = torch.einsum("...nb,...nd->...bd", sk, v)
        num = torch.einsum("...nb,...bd->...nd", sq, ctx)
        den = torch.einsum("...nb,...b->...n", sq, sk.sum(-2)) + c * v.shape[-2]
        vterm = v.sum(-2, keepdim=True) if mode == "consistent" else v
    return (num + c * vterm) / den.unsqueeze(-1)


class HashedAttentionFunction(torch.autograd.Function):
    """``out = hashed_attention(sign(zq), sign(zk), v)``: forward by kernkit's kernel on packed
    codes, backward in the O(n b d) linear form; the sign's gradient is the reference's
    straight-through estimator, ``d sign(z)/dz = 1 where |z| < 1, else 0``."""

    @staticmethod
    def forward(ctx: Any, zq: torch.Tensor, zk: torch.Tensor, v: torch.Tensor, causal: bool,
                offset: float | None, mode: HashMode,
                key_lengths: Any = None) -> torch.Tensor:
        bits = int(zq.shape[-1])
        c = float(bits + 1) if offset is None else float(offset)
        hq, hk = pack_codes(zq.detach()), pack_codes(zk.detach())
        vd = v.detach()
        if vd.device.type == "cpu":  # the CPU kernel is float32/float64: half inputs go via float32
            cdt = vd.dtype if vd.dtype in (torch.float32, torch.float64) else torch.float32
            out = kernkit.hashed_attention(hq, hk, vd.to(cdt), bits, causal=causal, offset=c,
                                           mode=mode, key_lengths=key_lengths).to(vd.dtype)
        else:
            out = kernkit.hashed_attention(hq, hk, vd.contiguous(), bits, causal=causal,
                                           offset=c, mode=mode, key_lengths=key_lengths)
        ctx.save_for_backward(zq.detach(), zk.detach(), vd)
        ctx.c, ctx.causal, ctx.mode = c, causal, mode
        ctx.kmask = None
        if key_lengths is not None:
            lens = torch.as_tensor(key_lengths, device=vd.device).to(torch.int64)
            lens = torch.broadcast_to(lens, tuple(vd.shape[:-2]))
            pos = torch.arange(vd.shape[-2], device=vd.device)
            ctx.kmask = (pos < lens.unsqueeze(-1)).to(torch.float64 if vd.dtype == torch.float64
                                                     else torch.float32)
        return out  # type: ignore[no-any-return]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        zq, zk, v = ctx.saved_tensors
        cdt = torch.float64 if v.dtype == torch.float64 else torch.float32
        with torch.enable_grad():
            sq = _signs(zq, cdt).requires_grad_(ctx.needs_input_grad[0])
            sk = _signs(zk, cdt).requires_grad_(ctx.needs_input_grad[1])
            vv = v.to(cdt).requires_grad_(ctx.needs_input_grad[2])
            out = _linear_form(sq, sk, vv, ctx.c, ctx.causal, ctx.mode, ctx.kmask)
            wrt = [t for t in (sq, sk, vv) if t.requires_grad]
            grads = list(torch.autograd.grad(out, wrt, grad_out.to(cdt))) if wrt else []
        res: list[Any] = []
        for need, z in ((ctx.needs_input_grad[0], zq), (ctx.needs_input_grad[1], zk)):
            if need:
                g = grads.pop(0)
                res.append((g * (z.abs() < 1).to(g.dtype)).to(z.dtype))
            else:
                res.append(None)
        res.append(grads.pop(0).to(v.dtype) if ctx.needs_input_grad[2] else None)
        return (*res, None, None, None, None)


def hashed_attention(zq: torch.Tensor, zk: torch.Tensor, v: torch.Tensor, causal: bool = False,
                     offset: float | None = None, mode: HashMode = "consistent",
                     key_lengths: Any = None) -> torch.Tensor:
    """Trainable EcoFormer attention on real-valued pre-sign codes ``zq`` (..., n_q, bits) and
    ``zk`` (..., n_k, bits) and values ``v`` (..., n_k, d); see `kernkit.hashed_attention` for
    the formula (codes ``sign(z)``, sign(0) = +1) and ``key_lengths`` (padding mask). Pass the
    same tensor as ``zq`` and ``zk`` for a shared hash (its gradient is the sum of both roles)."""
    if zq.shape[-1] != zk.shape[-1]:
        raise ValueError(f"arguments 'zq' and 'zk' must have the same number of bits, got "
                         f"{zq.shape[-1]} and {zk.shape[-1]}")
    # (torch 2.13 leaves Function.apply untyped, 2.14 returns Any)
    return HashedAttentionFunction.apply(zq, zk, v, causal, offset, mode, key_lengths)  # type: ignore[no-any-return, no-untyped-call, unused-ignore]


def _project(x: torch.Tensor, anchors: torch.Tensor, mvec: torch.Tensor, A: torch.Tensor,
             sigma: torch.Tensor | None, normalize: bool) -> torch.Tensor:
    """A k̄(x): centred RBF features to the anchors times A (sigma None: per-batch sigma)."""
    if normalize:
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    D = ((x.unsqueeze(-2) - anchors.unsqueeze(-3)) ** 2).sum(-1)     # (..., H, n, m)
    sig = D.mean(dim=(-2, -1), keepdim=True) if sigma is None else sigma[:, None, None]
    K = torch.exp(-D / (2 * sig)) - mvec[:, None, :]
    return torch.einsum("...hnm,hbm->...hnb", K, A)


def kernel_hash_project(kh: Any, x: torch.Tensor, role: str = "query") -> torch.Tensor:
    """Differentiable ``A k̄(x)`` of a fitted `kernkit.KernelHash` (its anchors, sigma, centring
    and A as constants; gradients flow to x), shape x.shape[:-1] + (bits,). x is (..., heads,
    n, d) with the fit's heads; compute dtype x's."""
    kh._check_fitted()
    A = kh.A_ if (role == "query" or kh.A_key_ is None) else kh.A_key_
    dt, dev = x.dtype, x.device

    def as_t(a: Any) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dt, device=dev)

    sigma = None if kh.sigma == "batch" else as_t(kh.sigma_)
    return _project(x, as_t(kh.anchors_), as_t(kh.mvec_), as_t(A), sigma, kh.normalize)


class HashedAttention(torch.nn.Module):
    """EcoFormer attention as a module: a fitted `kernkit.KernelHash` (held in buffers, so
    ``.to(device)`` and ``state_dict`` carry it) projects queries and keys to pre-sign codes,
    `hashed_attention` attends with them (straight-through gradients to q and k, exact ones to
    v). ``forward(q, k, v)`` takes (..., heads, n, d) tensors. The hash itself stays fixed, as
    in the reference (refit with ``KernelHash.fit`` and build a new module to relearn it). Its
    buffers are float32: with float64 inputs the pre-sign codes differ from
    ``KernelHash.project``'s by ~1e-7 relative, so a code exactly at a sign boundary may flip."""

    anchors: torch.Tensor  # buffers (registered in __init__)
    mvec: torch.Tensor
    sigma: torch.Tensor
    A_query: torch.Tensor
    A_key: torch.Tensor

    def __init__(self, kernel_hash: Any, causal: bool = False, offset: float | None = None,
                 mode: HashMode = "consistent") -> None:
        super().__init__()
        kernel_hash._check_fitted()
        self.bits = int(kernel_hash.bits)
        self.causal, self.offset, self.mode = bool(causal), offset, mode
        self.normalize = bool(kernel_hash.normalize)
        self.batch_sigma = kernel_hash.sigma == "batch"
        f32 = torch.float32
        self.register_buffer("anchors", torch.tensor(kernel_hash.anchors_, dtype=f32))
        self.register_buffer("mvec", torch.tensor(kernel_hash.mvec_, dtype=f32))
        self.register_buffer("sigma", torch.tensor(kernel_hash.sigma_, dtype=f32))
        self.register_buffer("A_query", torch.tensor(kernel_hash.A_, dtype=f32))
        A_key = kernel_hash.A_ if kernel_hash.A_key_ is None else kernel_hash.A_key_
        self.register_buffer("A_key", torch.tensor(A_key, dtype=f32))

    def codes(self, x: torch.Tensor, role: str = "query") -> torch.Tensor:
        """Real-valued pre-sign codes (..., heads, n, bits) in x's dtype."""
        dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        buf = {k: getattr(self, k).to(dt) for k in ("anchors", "mvec", "sigma", "A_query", "A_key")}
        A = buf["A_query"] if role == "query" else buf["A_key"]
        return _project(x.to(dt), buf["anchors"], buf["mvec"], A,
                        None if self.batch_sigma else buf["sigma"], self.normalize)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                key_lengths: Any = None) -> torch.Tensor:
        return hashed_attention(self.codes(q, "query"), self.codes(k, "key"), v,
                                causal=self.causal, offset=self.offset, mode=self.mode,
                                key_lengths=key_lengths)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, heads={self.anchors.shape[0]}, anchors={self.anchors.shape[1]}, "
                f"causal={self.causal}, mode={self.mode!r}")


# ----------------------------------------------------------------------------------------------
# Special functions: kernkit.log_iv & co. on tensors that require grad, differentiable in x
# ----------------------------------------------------------------------------------------------

def _special_derivative(name: str, v: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d/dx kernkit.<name>(v, x), given its value y."""
    if name == "log_iv":
        return cast(torch.Tensor, kernkit.dlog_iv(v, x))
    if name == "log_ive":  # log I_v(x) - |x|
        return cast(torch.Tensor, kernkit.dlog_iv(v, x)) - torch.sign(x)
    if name == "log_kv":
        return cast(torch.Tensor, kernkit.dlog_kv(v, x))
    if name == "log_kve":  # log K_v(x) + x
        return cast(torch.Tensor, kernkit.dlog_kv(v, x)) + 1.0
    # The ratio and the log-derivatives from the modified Bessel equation, in float64. Its terms
    # (size T >= 1) cancel: absolute error ~1e-16 T, relative ~1e-16 T / |f'| (~1e-16 x^2 at large
    # x, where f' ~ 1/x^2).
    v64 = torch.as_tensor(v, dtype=torch.float64, device=y.device)
    x64, y64 = x.double(), y.double()
    if name == "bessel_iv_ratio":  # R' = 1 - R^2 - (2v + 1) R/x, R/x -> 1/(2v + 2) at x = 0
        rx = torch.where(x64 == 0, 1.0 / (2.0 * v64 + 2.0), y64 / x64)
        d = 1.0 - y64 * y64 - (2.0 * v64 + 1.0) * rx
    else:  # dlog_iv, dlog_kv: D' = 1 + v^2/x^2 - D/x - D^2
        d = 1.0 + (v64 / x64) ** 2 - y64 / x64 - y64 * y64
    return d.to(y.dtype)


class SpecialFunction(torch.autograd.Function):
    """``kernkit.<name>(v, x)`` with its x-derivative; the order v is not differentiated."""

    @staticmethod
    def forward(ctx: Any, name: str, v: Any, x: Any) -> torch.Tensor:
        vd = v.detach() if isinstance(v, torch.Tensor) else v
        xd = x.detach() if isinstance(x, torch.Tensor) else x
        y = cast(torch.Tensor, getattr(kernkit, name)(vd, xd))
        ctx.name, ctx.v = name, vd
        ctx.save_for_backward(xd if isinstance(xd, torch.Tensor) else None, y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable  # (the derivative is not itself differentiated)
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        if ctx.needs_input_grad[1]:
            raise NotImplementedError(f"kernkit.{ctx.name}: the derivative with respect to the order v "
                                      "is not implemented (only x is differentiated)")
        x, y = ctx.saved_tensors
        if not ctx.needs_input_grad[2]:
            return None, None, None
        gx = grad_out * _special_derivative(ctx.name, ctx.v, x, y)
        return None, None, gx.sum_to_size(x.shape).to(x.dtype)


def special_autograd(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """kernkit.<name>(v, x) when an argument is a tensor that requires grad (and grad mode is
    on): the same values, differentiable in x (`SpecialFunction`). Called by the public names."""
    if len(args) != 2:
        raise TypeError(f"{name}() takes 2 positional arguments, got {len(args)}")
    if kwargs:
        raise TypeError(f"{name}(): keyword arguments {sorted(kwargs)} are not supported for tensors "
                        "that require grad")
    # (torch 2.13 leaves Function.apply untyped, 2.14 returns Any)
    return SpecialFunction.apply(name, args[0], args[1])  # type: ignore[no-any-return, no-untyped-call, unused-ignore]
