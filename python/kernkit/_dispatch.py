"""The one dispatch layer every kernkit family uses.

Device detection (numpy on the CPU; CuPy / PyTorch CUDA arrays through DLPack), argument
checks that name the argument, outputs allocated by the caller's own array library, and the
caller's current CUDA stream. Nothing here copies data between devices.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from typing import Any, Protocol, cast

import numpy as np

from . import _core

# DLPack device types (dlpack.h): kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13.
_DL_CPU = (1, 3)
_DL_CUDA = (2, 13)
_HOST_SCALARS = (bool, int, float, np.generic)
_FLOAT_DTYPES = ("float32", "float64")
# dtype codes of the CUDA entry points that take addresses (kernkit::cuda::RationalDtype,
# kernkit::cuda::hashattn::Dtype)
CUDA_DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


class Device:
    """Where an array lives: kind 'cpu' or 'cuda' and a device index."""

    __slots__ = ("kind", "index")

    def __init__(self, kind: str, index: int = 0) -> None:
        self.kind = kind
        self.index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    def __repr__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


CPU = Device("cpu")


@functools.lru_cache(maxsize=None)
def _cuda_device(index: int) -> Device:
    return Device("cuda", index)


@functools.lru_cache(maxsize=None)
def _torch_is_rocm() -> bool:
    import torch

    return torch.version.hip is not None


def device_of(a: Any) -> Device | None:
    """The device of an array, or None for a Python / numpy scalar."""
    if isinstance(a, np.ndarray):
        return CPU
    if isinstance(a, _HOST_SCALARS):
        return None
    if type(a).__module__.split(".")[0] == "torch":
        # torch's __dlpack_device__ is Python code (~3 us); its is_cuda / is_cpu flags say the same
        # (a.device builds a torch.device: slower, and this runs once per argument per call).
        if a.is_cuda and not _torch_is_rocm():
            return _cuda_device(a.get_device())
        if a.is_cpu:
            return CPU
    dl = getattr(a, "__dlpack_device__", None)
    if dl is None:
        return CPU  # lists, tuples, numpy-convertible objects
    kind, index = dl()
    kind = int(kind)
    if kind in _DL_CPU:
        return CPU
    if kind in _DL_CUDA:
        return _cuda_device(int(index))
    raise ValueError(f"unsupported array device (DLPack device type {kind}); kernkit handles CPU and CUDA")


def common_device(args: dict[str, Any]) -> Device:
    """The one device of the named arguments; a ValueError naming both if they differ."""
    found: tuple[str, Device] | None = None
    for name, a in args.items():
        d = device_of(a)
        if d is None:
            continue
        if found is None:
            found = (name, d)
        elif d != found[1]:
            raise ValueError(
                f"argument {name!r} is on {d} but {found[0]!r} is on {found[1]}; "
                "kernkit never copies between devices: move them to one device first"
            )
    return found[1] if found else CPU


def require_cuda(name: str) -> None:
    if not _core.cuda_built():
        raise RuntimeError(
            f"argument {name!r} is a CUDA array but this kernkit build has no CUDA support "
            "(rebuild with KERNKIT_CUDA=ON where nvcc and cuFFT are installed)"
        )


@functools.lru_cache(maxsize=64)
def name_of(dt: Any) -> str:
    """A numpy or torch dtype as numpy spells it (cached: str(numpy dtype) and dtype.name are
    Python code in numpy 2, several us each, per call)."""
    return str(dt).replace("torch.", "")


def dtype_name(a: Any) -> str:
    """a's dtype as numpy spells it ("float32", "bfloat16", ...; the type's name without one)."""
    dt = getattr(a, "dtype", None)
    return type(a).__name__ if dt is None else name_of(dt)


def check_float_dtype(name: str, a: Any) -> None:
    """TypeError unless `a` is float32 or float64."""
    dt = dtype_name(a)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"argument {name!r} must be float32 or float64, got {dt}")


_NAMESPACES: dict[type, Any] = {}


def array_namespace(*arrays: Any) -> Any:
    """The caller's array library (array-api-compat namespace) for allocating outputs. One array's
    is looked up once per array type (the compat lookup is Python code, microseconds a call)."""
    import array_api_compat

    if len(arrays) == 1 and not isinstance(arrays[0], _HOST_SCALARS):
        tp = type(arrays[0])
        ns = _NAMESPACES.get(tp)
        if ns is None:
            ns = _NAMESPACES[tp] = array_api_compat.array_namespace(arrays[0])
        return ns
    arrs = [a for a in arrays if not isinstance(a, _HOST_SCALARS)]
    return array_api_compat.array_namespace(*arrs)


def current_stream(a: Any) -> int:
    """The caller's current CUDA stream handle for array `a` (0 = the default stream)."""
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        import torch

        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        if raw is not None:
            # the handle without building a torch.cuda.Stream (several us per call on a slow host;
            # the function TorchInductor's generated code calls for the same purpose)
            index = a.get_device()
            return int(raw(index if index >= 0 else torch.cuda.current_device()))
        return int(torch.cuda.current_stream(a.device).cuda_stream)
    if mod == "cupy":
        import cupy

        return int(cupy.cuda.get_current_stream().ptr)
    return 0


def capturing(a: Any) -> bool:
    """Whether the caller's current stream for CUDA array `a` is capturing a CUDA graph. Reading
    device data back to the host is not permitted then (it would synchronize), so the few checks
    that need device values (toeplitz's c[0] == r[0], rpe's lambda range) are skipped under capture."""
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        import torch

        index = a.get_device()
        if index < 0:
            return False
        if index == torch.cuda.current_device():
            return bool(torch.cuda.is_current_stream_capturing())
        with torch.cuda.device(index):
            return bool(torch.cuda.is_current_stream_capturing())
    if mod == "cupy":
        import cupy

        return bool(cupy.cuda.get_current_stream().is_capturing())
    return False


def device_pointer(a: Any) -> int | None:
    """The device address of a torch tensor or CuPy array (None for other libraries): for
    bindings that take addresses, where importing the array through DLPack would cost more than
    the work (torch's ``__dlpack__`` is Python code, microseconds per tensor)."""
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        return int(a.data_ptr())
    if mod == "cupy":
        return int(a.data.ptr)
    return None


def element_strides(a: Any) -> tuple[int, ...]:
    """A torch / CuPy array's strides in elements (CuPy's are in bytes)."""
    if type(a).__module__.split(".")[0] == "torch":
        return tuple(a.stride())
    return tuple(st // a.itemsize for st in a.strides)


def addresses(*arrays: Any) -> list[int] | None:
    """The arrays' device addresses (0 for None), or None unless all are torch / CuPy arrays."""
    res = []
    for a in arrays:
        p = 0 if a is None else device_pointer(a)
        if p is None:
            return None
        res.append(p)
    return res


_NO_GUARD = contextlib.nullcontext()


def device_guard(a: Any) -> Any:
    """A context that makes a's CUDA device current (a no-op context where it already is), so
    that kernels launched through raw addresses run on the arrays' device."""
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        import torch

        index = a.get_device()
        if index >= 0 and index != torch.cuda.current_device():
            return torch.cuda.device(index)
    elif mod == "cupy":
        import cupy

        if a.device.id != cupy.cuda.runtime.getDevice():
            return a.device
    return _NO_GUARD


def contiguous(a: Any) -> Any:
    """A C-contiguous array on a's own device (a same-device copy only where needed); torch
    tensors are detached, since DLPack cannot export a tensor that requires grad."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a)
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        return a if not a.requires_grad and a.is_contiguous() else a.detach().contiguous()
    if mod == "cupy":
        import cupy

        return cupy.ascontiguousarray(a)
    return a


def npz_path(path: str | os.PathLike[str]) -> str:
    """The file a ``save(path)`` wrote: numpy's savez adds ``.npz`` to a path without it, so the
    families' ``load`` take the path as given to ``save`` too."""
    p = os.fspath(path)
    return p + ".npz" if not os.path.exists(p) and os.path.exists(p + ".npz") else p


def _grad_enabled() -> bool:
    import torch  # (only reached for an object with a true requires_grad, i.e. a torch tensor)

    return bool(torch.is_grad_enabled())


def wants_grad(*arrays: Any) -> bool:
    """Whether an argument is a torch tensor that requires grad while grad mode is on: the
    functions with an autograd Function (kernkit.torch) then go through it."""
    return any(getattr(a, "requires_grad", False) for a in arrays) and _grad_enabled()


def as_tensors(*arrays: Any) -> list[Any]:
    """The arguments as torch tensors on the device of the first tensor among them (for the
    autograd Functions, which take tensors; numpy inputs are copied there)."""
    import torch

    dev = next(a.device for a in arrays if isinstance(a, torch.Tensor))
    return [a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a), device=dev) for a in arrays]


def to_library_of(like: Any, y: Any) -> Any:
    """A CPU path's numpy result as a torch tensor (zero-copy) when `like` is a torch tensor;
    anything else (a CUDA path's result is already in its library) as it is."""
    if isinstance(y, np.ndarray) and type(like).__module__.split(".")[0] == "torch":
        import torch

        return torch.from_numpy(y)
    return y


def refuse_grad(name: str, alternative: str = "", **arrays: Any) -> None:
    """TypeError for a torch tensor that requires grad (grad mode on) given to a function that
    records no gradients: an error, not a silently detached result."""
    for key, a in arrays.items():
        if getattr(a, "requires_grad", False) and _grad_enabled():
            raise TypeError(f"kernkit.{name}: argument {key!r} is a tensor that requires grad, but "
                            f"{name} records no gradients{alternative}; pass a detached tensor or "
                            "call it under torch.no_grad()")


def _is_cuda(a: Any) -> bool:
    d = device_of(a)
    return d is not None and d.kind == "cuda"


def _ufunc_on_torch_cpu(uf: np.ufunc, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The ufunc on torch CPU tensors through zero-copy numpy views (numpy's own handling of
    torch tensors goes through torch's deprecated __array_wrap__); the result as a tensor."""
    import torch

    def view(a: Any) -> Any:
        return a.numpy() if isinstance(a, torch.Tensor) else a

    out = kwargs.get("out")
    if out is not None:
        kwargs = dict(kwargs, out=tuple(view(o) for o in out) if isinstance(out, tuple) else view(out))
    r = uf(*(view(a) for a in args), **kwargs)
    if out is not None:
        return out[0] if isinstance(out, tuple) else out
    return torch.from_numpy(np.asarray(r))


def _ufunc_on_cuda(name: str, fn_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A binary special function on CUDA arrays: same device, caller's library and stream."""
    if len(args) != 2:
        raise TypeError(f"{name}() takes 2 positional arguments, got {len(args)}")
    if kwargs:
        raise TypeError(f"{name}(): keyword arguments {sorted(kwargs)} are supported on the CPU only")
    named = {"v": args[0], "x": args[1]}
    dev = common_device(named)
    require_cuda("x" if device_of(args[1]) == dev else "v")
    arrays = [a for a in args if not isinstance(a, _HOST_SCALARS)]
    for arg_name, a in named.items():
        if not isinstance(a, _HOST_SCALARS) and "complex" in str(a.dtype):
            raise TypeError(f"argument {arg_name!r}: complex input is not supported")
    like = arrays[0]
    xp = array_namespace(*arrays)
    f64 = not all(dtype_name(a) == "float32" for a in arrays)
    dtype = xp.float64 if f64 else xp.float32
    v, x = args
    if not (len(arrays) == 2 and type(v) is type(x) and tuple(v.shape) == tuple(x.shape)
            and dtype_name(v) == dtype_name(x) == ("float64" if f64 else "float32")):
        # (a Python scalar, another dtype or shape: converted and broadcast on the device)
        v, x = (xp.asarray(a, dtype=dtype, device=like.device) for a in args)
        v, x = xp.broadcast_arrays(v, x)
    v, x = contiguous(v), contiguous(x)
    out = xp.empty(v.shape, dtype=dtype, device=like.device)
    stream = current_stream(like)
    addr = addresses(v, x, out)
    if addr is None:
        _core.special_cuda(fn_id, v, x, out, stream)
    else:  # torch / CuPy: addresses instead of three (float64: six) DLPack imports
        with device_guard(like):
            _core.special_cuda_ptr(fn_id, math.prod(v.shape), addr[0], addr[1], addr[2], f64, stream)
    return out


class BinaryUfunc(Protocol):
    """Type of kernkit's binary elementwise functions (see `make_ufunc`)."""

    ufunc: np.ufunc
    nin: int
    nout: int
    types: list[str]

    def __call__(self, v: Any, x: Any, /, *args: Any, **kwargs: Any) -> Any: ...


_UFUNC_ATTRS = ("nin", "nout", "nargs", "ntypes", "types", "identity", "signature", "reduce",
                "accumulate", "reduceat", "outer", "at")


def make_ufunc(name: str, doc: str) -> BinaryUfunc:
    """The public form of a compiled binary ufunc: the numpy ufunc on the CPU, CUDA arrays too.

    On the CPU a call is exactly the numpy ufunc (``f.ufunc``): broadcasting, ``out=``,
    ``where=``, dtype rules and ``__array_ufunc__`` overrides (Dask, xarray). CUDA arrays are
    computed on their device, on the caller's current stream, into the caller's array type.
    torch tensors that require grad (with grad mode on) go through an autograd Function,
    differentiable in x (`kernkit.torch.special_autograd`).
    A plain function (not a class instance) keeps the per-call overhead small.
    """
    uf, fn_id = _core.special_ufuncs[name]
    nd = np.ndarray

    def call(*args: Any, **kwargs: Any) -> Any:
        for a in args:
            if type(a) is not nd and getattr(a, "requires_grad", False) and _grad_enabled():
                # torch tensors that require grad: differentiable in x (kernkit.torch)
                from .torch import special_autograd

                return special_autograd(name, args, kwargs)
        for a in args:
            if type(a) is not nd and hasattr(a, "__dlpack_device__"):
                if _is_cuda(a):
                    return _ufunc_on_cuda(name, fn_id, args, kwargs)
                if type(a).__module__.split(".")[0] == "torch":
                    return _ufunc_on_torch_cpu(uf, args, kwargs)
        return uf(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = doc
    call.__module__ = "kernkit"
    setattr(call, "ufunc", uf)
    for attr in _UFUNC_ATTRS:
        setattr(call, attr, getattr(uf, attr))
    return cast(BinaryUfunc, call)
