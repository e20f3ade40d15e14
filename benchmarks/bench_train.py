"""GAN training throughput: one Spiking-GAN step with the NumPy kernel vs the same
step with every forward pass run by Brian2 (numpy target).

Both variants execute exactly the same learning rule (training.gan.gan_step); the
Brian2 variant only swaps the forward simulator (its spike times are turned into
the event structure the learning rule needs). Prints samples/s and the ratio,
measured in one run, and checks that both give identical weights after a step.

    python benchmarks/bench_train.py [--config configs/mnist.toml] [--steps 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from models import brian  # noqa: E402
from models.kernel import group_events  # noqa: E402
from training import backprop, gan as gan_mod  # noqa: E402
from training import config as cm  # noqa: E402
from training.data import load_digits  # noqa: E402


def brian_forward_trace(weights, t_in, params, dtype=np.float32, bank=None):
    """Trace of a Brian2 forward pass (spike times from Brian2, events regrouped)."""
    if bank is not None:
        raise ValueError("the Brian2 variant simulates one network: use a config without per_class")
    times = brian.simulate([np.asarray(w, np.float64) for w in weights], t_in, params).times
    ins = [np.asarray(t_in)] + times[:-1]
    events = [group_events(t, params.t_max - params.latency, dtype) for t in ins]
    return backprop.Trace(np.asarray(t_in), times, events)


def run_steps(cfg, gan, real, n_steps, seed):
    rng = np.random.default_rng(seed)
    sizes = gan_mod.Gan.sizes(cfg)
    dg, dd = backprop.DeadNeuronMonitor(sizes["g"]), backprop.DeadNeuronMonitor(sizes["d"])
    B, k = cfg.train.batch_size, cfg.train.d_steps
    t0 = time.perf_counter()
    for s in range(n_steps):
        batches = [real[(s * k + j) * B:(s * k + j + 1) * B] for j in range(k)]
        gan_mod.gan_step(gan, cfg, batches, rng, dg, dd)
    return (time.perf_counter() - t0) / n_steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "mnist.toml"))
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cfg = cm.load(args.config, cm.GanConfig)
    per_step = cfg.train.batch_size * cfg.train.d_steps

    def fresh():
        return gan_mod.Gan.init(cfg, np.random.default_rng(cfg.seed))

    real = fresh().encode_real(load_digits().train_images)  # as D sees them (delayed)

    g_k = fresh()
    t_kernel = run_steps(cfg, g_k, real, args.steps, 1)
    g_k1, g_b1 = fresh(), fresh()
    run_steps(cfg, g_k1, real, 1, 2)
    original = backprop.forward_trace
    backprop.forward_trace = brian_forward_trace
    try:
        t_brian = run_steps(cfg, g_b1, real, 1, 2)
    finally:
        backprop.forward_trace = original
    same = all(np.array_equal(a, b) for a, b in zip(g_k1.g + g_k1.d, g_b1.g + g_b1.d))
    print(f"config {os.path.relpath(args.config, ROOT)}: G {gan_mod.Gan.sizes(cfg)['g']}, "
          f"D {gan_mod.Gan.sizes(cfg)['d']}, t_max {cfg.neuron.t_max}, batch {cfg.train.batch_size}, "
          f"d_steps {cfg.train.d_steps} ({per_step} real samples per step)")
    print("| forward simulator | s / step | samples/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| NumPy kernel | {t_kernel:.3f} | {per_step / t_kernel:,.0f} | {t_brian / t_kernel:.0f}x |")
    print(f"| Brian2 (numpy target) | {t_brian:.2f} | {per_step / t_brian:,.1f} | 1x |")
    print(f"identical weights after one step with either simulator: {same}")


if __name__ == "__main__":
    main()
