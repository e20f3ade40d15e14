"""Forward-pass throughput: Brian2 (numpy, cython targets) vs the NumPy kernel vs a
dense, time-stepped per-image formulation (as S4NN's published code computes it).

The same 784-400-2 network (S4NN initial weights, thresholds 100 mV, t_max 256)
runs the same batch of embedded digits through every simulator; all must
return identical spike times. Prints images/s and the ratio to the kernel,
all measured in this one run.

    python benchmarks/bench_forward.py [--batch 100] [--repeat 5] [--skip-cython]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models import brian, kernel  # noqa: E402
from models.coding import encode_images  # noqa: E402
from models.network import default_ranges, init_uniform  # noqa: E402
from models.neuron import THRESHOLD_EPS_MV, NeuronParams  # noqa: E402
from training.data import load_digits  # noqa: E402


def dense_forward(weights, t_in, params):
    """Per-image dense formulation: raster (n_in, t_max + 1), ``cumsum(W.T @ raster)``."""
    out = [np.empty((len(t_in), w.shape[1]), np.int32) for w in weights]
    T = params.t_max
    for b in range(len(t_in)):
        t = t_in[b]
        for k, (w, theta) in enumerate(zip(weights, params.thresholds)):
            raster = np.zeros((w.shape[0], T + 1), np.float32)
            raster[np.arange(w.shape[0]), t] = 1.0
            v = np.cumsum(w.T @ raster[:, :T], axis=1)
            crossed = v >= theta - THRESHOLD_EPS_MV
            first = crossed.argmax(axis=1)
            t = np.where(crossed.any(axis=1), first + params.latency, T)
            t = np.minimum(t, T).astype(np.int32)
            out[k][b] = t
    return out


def timed(fn, repeat):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-cython", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    params = NeuronParams((100.0, 100.0), t_max=256)
    weights = init_uniform(rng, (784, 400, 2), default_ranges(2))
    t_in = encode_images(load_digits().test_images[:args.batch], params.t_max)

    rows = []
    t_k, ref = timed(lambda: kernel.forward(weights, t_in, params), args.repeat * 4)
    rows.append(("NumPy kernel (event-driven, batched)", t_k))
    t_d, dense = timed(lambda: dense_forward(weights, t_in, params), max(1, args.repeat // 2))
    rows.append(("dense time-stepped, per image", t_d))
    t_b, res = timed(lambda: brian.simulate(weights, t_in, params, target="numpy").times, 1)
    rows.append(("Brian2, numpy target (build included)", t_b))
    results = [dense, res]
    if not args.skip_cython:
        t_c0, _ = timed(lambda: brian.simulate(weights, t_in, params, target="cython").times, 1)
        t_c, resc = timed(lambda: brian.simulate(weights, t_in, params, target="cython").times, 1)
        rows.append(("Brian2, cython target (first call, compile if not cached)", t_c0))
        rows.append(("Brian2, cython target (cached build)", t_c))
        results.append(resc)
    for other in results:
        for a, b in zip(ref, other):
            assert np.array_equal(a, b), "simulators disagree"

    print(f"784-400-2, t_max 256, batch {args.batch} digits; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; numpy {np.__version__}")
    print(f"| simulator | s / batch | images/s | kernel speed-up |")
    print(f"|---|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.3f} | {args.batch / t:,.0f} | {t / t_k:.1f}x |")
    print("all simulators returned identical spike times")


if __name__ == "__main__":
    main()
