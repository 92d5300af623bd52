"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest

import kernkit

FAKE_STREAM = 1234


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> dict[int, Any]:
    """The Python side of the CUDA calls without a GPU: torch CPU tensors are dressed as CUDA ones
    (device cuda:0, stream FAKE_STREAM, a CUDA build). Returns the arrays whose device address
    was taken, by address, for stand-ins of the address bindings to find them."""
    pytest.importorskip("torch")
    seen: dict[int, Any] = {}
    real_ptr = kernkit._dispatch.device_pointer
    real_device_of = kernkit._dispatch.device_of

    def record(a: Any) -> int | None:
        p = real_ptr(a)
        if p is not None:
            seen[p] = a
        return p

    def fake_device_of(a: Any) -> Any:
        if type(a).__module__.split(".")[0] == "torch":
            return kernkit._dispatch.Device("cuda", 0)
        return real_device_of(a)

    monkeypatch.setattr(kernkit._dispatch, "device_of", fake_device_of)
    monkeypatch.setattr(kernkit._dispatch, "device_pointer", record)
    monkeypatch.setattr(kernkit._dispatch, "current_stream", lambda a: FAKE_STREAM)
    monkeypatch.setattr(kernkit._dispatch, "capturing", lambda a: False)  # no CUDA graph capture
    monkeypatch.setattr(kernkit._core, "cuda_built", lambda: True)
    return seen
