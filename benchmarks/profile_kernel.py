"""Where the NumPy kernel's time goes: cProfile of ``models.kernel.forward`` on embedded digits.

The 784-400-2 network of ``bench_forward.py`` (S4NN init, t_max 256) by default, or G and D of a
GAN config at its initial weights (``--gan configs/mnist.toml``: G on noise, D on real digits).
Prints ms per image and the functions with the most own time (see docs/performance.md).

    python benchmarks/profile_kernel.py [--batch 2000] [--dtype float32] [--gan CONFIG] [--top 12]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from bench_forward import PARAMS, inputs  # noqa: E402

from models import kernel  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--gan", help="profile G and D of this GAN config instead")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    dtype = np.dtype(args.dtype).type
    weights, t_in = inputs(args.batch)
    if args.gan:
        from training import config as cm
        from training import gan as gan_mod
        from training.data import load_digits
        cfg = cm.load(args.gan, cm.GanConfig)
        gan = gan_mod.Gan.init(cfg, np.random.default_rng(cfg.seed))
        real = gan.encode_real(load_digits().train_images[:args.batch])
        noise = gan.g_input(np.random.default_rng(2), args.batch)

        def run():
            kernel.forward(gan.g.weights, noise, gan.g_params, dtype=dtype)
            kernel.forward(gan.d.weights, real, gan.d_params, dtype=dtype)
    else:
        def run():
            kernel.forward(weights, t_in, PARAMS, dtype=dtype)
    run()  # warm-up
    t0 = time.perf_counter()
    run()
    print(f"{(time.perf_counter() - t0) / args.batch * 1e3:.3f} ms per image (batch {args.batch}, {args.dtype}"
          f"{', ' + args.gan if args.gan else ''}); load average {os.getloadavg()[0]:.1f}")
    prof = cProfile.Profile()
    prof.runcall(run)
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
