"""The kernel's running sum (``models.kernel.running_sum``) against the two ways it could be done.

On the block shapes of training (``_BLOCK_RANKS`` ranks x samples x neurons), one BLAS thread:
the kernel's one vectorised add per rank, the float32 product with a lower-triangular matrix of
ones (the kernel's method until 2026-12-02), and ``np.cumsum(axis=0)``. Prints the best of 5
timings and, per method, whether its bits equal ``np.cumsum``'s (the product's depend on the
CPU's BLAS kernel).

    python benchmarks/bench_running_sum.py
"""
from __future__ import annotations

import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models import kernel  # noqa: E402

SHAPES = ((16, 2_000), (16, 12_800), (16, 39_200), (8, 100_000))


def _best(fn) -> float:
    """Seconds per call: the best of 5 repeats of 50 calls."""
    return min(timeit.repeat(fn, number=50, repeat=5)) / 50


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| block (ranks x columns) | per-rank adds (us) | triangular product (us) | np.cumsum (us) | "
          "product's bits = cumsum's |")
    print("|---|---:|---:|---:|---|")
    for k, m in SHAPES:
        x = rng.standard_normal((k, m)).astype(np.float32)
        tri = np.tri(k, dtype=np.float32)
        with kernel.pinned_blas_threads():
            t_adds = _best(lambda x=x: kernel.running_sum(x.copy()))
            t_tri = _best(lambda x=x, tri=tri: tri @ x)
            t_cs = _best(lambda x=x: np.cumsum(x, axis=0))
            same = (tri @ x).tobytes() == np.cumsum(x, axis=0).tobytes()
        assert kernel.running_sum(x.copy()).tobytes() == np.cumsum(x, axis=0).tobytes()
        print(f"| {k} x {m:,} | {t_adds * 1e6:.0f} | {t_tri * 1e6:.0f} | {t_cs * 1e6:.0f} | {same} |")


if __name__ == "__main__":
    main()
