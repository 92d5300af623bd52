"""A small user of kernkit's public API; tests/python/test_build.py runs `mypy --strict` on it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import kernkit


def log_normalizer_terms(kappa: npt.NDArray[np.float64], p: int) -> npt.NDArray[np.float64]:
    nu = p / 2 - 1
    out: npt.NDArray[np.float64] = kernkit.log_iv(nu, kappa)
    return out


def main() -> None:
    kernkit.set_num_threads(1)
    n: int = kernkit.get_num_threads()
    facts: dict[str, object] = kernkit.info()
    ok: bool = kernkit.cuda_available()
    where: str = kernkit.cmake_dir()
    r = kernkit.bessel_iv_ratio(np.array([0.5, 1.5]), 3.0)
    uf: np.ufunc = kernkit.log_iv.ufunc
    print(n, facts["simd"], ok, where, log_normalizer_terms(np.array([1.0, 2.0]), 3), r, uf.types)


if __name__ == "__main__":
    main()
