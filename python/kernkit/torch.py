"""PyTorch front end of kernkit's group-rational activations (KAT's GR-KAN, PAU) and of the
kernelized attention with relative positional encoding (``rpe_attention``, ``rpe_attention_decay``).

``Rational`` is an ``nn.Module`` with KAT's defaults (degrees (5, 4), form A, one numerator
shared by all channels, 8 denominator groups, GELU init), and ``RationalFunction`` the autograd
Function behind it. Both call kernkit's CPU or CUDA kernels on the tensors' own memory
(contiguous inputs are not copied). torch is an optional dependency: ``import kernkit`` works
without it; only this module needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import kernkit
from kernkit._rational import rational_init, variance_gain

__all__ = ["Rational", "RationalFunction", "RPEAttentionFunction", "RPEDecayAttentionFunction",
           "rational", "rpe_attention", "rpe_attention_decay"]


class RationalFunction(torch.autograd.Function):
    """``y = rational(x, num, den, form, channel_axis)`` with kernkit's backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, num: torch.Tensor, den: torch.Tensor,
                form: str = "A", channel_axis: int = -1) -> torch.Tensor:
        x, num, den = x.detach(), num.detach(), den.detach()
        ctx.save_for_backward(x, num, den)
        ctx.form = form
        ctx.channel_axis = channel_axis
        return kernkit.rational(x, num, den, form, channel_axis=channel_axis)

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
    return RationalFunction.apply(x, num, den, form, channel_axis)  # type: ignore[no-any-return]


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


class RPEAttentionFunction(torch.autograd.Function):
    """``kernkit.rpe_attention`` with gradients for q, k, v and rpe_bias (hand-derived,
    O(m d n log n), see `kernkit.rpe_attention_backward`)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rpe_bias: torch.Tensor,
                kw: dict[str, Any]) -> torch.Tensor:
        from kernkit import rpe as _rpe

        q, k, v, rpe_bias = q.detach(), k.detach(), v.detach(), rpe_bias.detach()
        out, den = _rpe._forward_bias(q, k, v, rpe_bias, **kw)
        ctx.save_for_backward(q, k, v, rpe_bias, out, den)
        ctx.kw = kw
        return out  # type: ignore[no-any-return]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, rpe_bias, out, den = ctx.saved_tensors
        dq, dk, dv, db = kernkit.rpe_attention_backward(
            grad_out.detach().to(q.dtype).contiguous(), q, k, v, rpe_bias, saved=(out, den), **ctx.kw)
        need = ctx.needs_input_grad
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
                db if need[3] else None, None)


class RPEDecayAttentionFunction(torch.autograd.Function):
    """``kernkit.rpe_attention_decay`` with gradients for q, k, v and lam (all O(n))."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lam: torch.Tensor,
                kw: dict[str, Any]) -> torch.Tensor:
        from kernkit import rpe as _rpe

        q, k, v, lam = q.detach(), k.detach(), v.detach(), lam.detach()
        out, den = _rpe._forward_decay(q, k, v, lam, **kw)
        ctx.save_for_backward(q, k, v, lam, out, den)
        ctx.kw = kw
        return out  # type: ignore[no-any-return]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, lam, out, den = ctx.saved_tensors
        dq, dk, dv, dlam = kernkit.rpe_attention_decay_backward(
            grad_out.detach().to(q.dtype).contiguous(), q, k, v, lam, saved=(out, den), **ctx.kw)
        need = ctx.needs_input_grad
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
                dlam.to(lam.dtype) if need[3] else None, None)


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
    low = _low_precision(q)
    if low is not None:  # float16 / bfloat16 (autocast): computed in float32, cast back
        out = RPEAttentionFunction.apply(q.float(), k.float(), v.float(), rpe_bias.float(), kw)
        return out.to(low)  # type: ignore[no-any-return]
    return RPEAttentionFunction.apply(q, k, v, rpe_bias.to(q.dtype), kw)  # type: ignore[no-any-return]


def _low_precision(q: torch.Tensor) -> Any:
    return q.dtype if q.dtype in (torch.float16, torch.bfloat16) else None


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
    low = _low_precision(q)
    if low is not None:  # float16 / bfloat16 (autocast): computed in float32, cast back
        out = RPEDecayAttentionFunction.apply(q.float(), k.float(), v.float(), lam.float(), kw)
        return out.to(low)  # type: ignore[no-any-return]
    return RPEDecayAttentionFunction.apply(q, k, v, lam.to(q.dtype), kw)  # type: ignore[no-any-return]
