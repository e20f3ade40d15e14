"""GAN training throughput: samples/s of one Spiking-GAN step (``training.gan.gan_step``) with this
kernel, with the kernel of an earlier commit (today's code path before the speed-up, loaded from
git; also with one BLAS thread, as this kernel uses), and with every forward pass run by Brian2
(numpy target).

All variants execute exactly the same learning rule; the earlier kernel swaps the forward and
backward passes of ``training.backprop`` for that commit's, the Brian2 variant only the forward
simulator (its spike times are turned into the event structure the learning rule needs). Each
config's variants run in this one process, one after the other, from the same initial weights;
the script checks that all give identical weights after the same steps. Prints a Markdown table.

    python benchmarks/bench_train.py [--configs configs/mnist.toml,configs/quick.toml] [--steps 5]
        [--reference 9f64838] [--brian-steps 1]
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from models import brian  # noqa: E402  (brian2 itself is imported by the Brian2 variant only)
from models.kernel import layer_events, pinned_blas_threads  # noqa: E402
from training import backprop  # noqa: E402
from training import config as cm  # noqa: E402
from training import gan as gan_mod  # noqa: E402
from training.data import load_digits  # noqa: E402

#: The last commit before the chunked kernel (issue 14): "today's code path" of the issue.
REFERENCE = "9f64838"


def load_reference(rev: str):
    """``training.backprop`` of commit ``rev`` running on that commit's ``models.kernel`` (from git)."""
    def source(path):
        return subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"], check=True,
                              capture_output=True, text=True).stdout

    def load(name, text):
        spec = importlib.util.spec_from_loader(name, loader=None)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        exec(compile(text, f"<{rev}:{name}>", "exec"), mod.__dict__)
        return mod

    ref_kernel = load("models.kernel_reference", source("models/kernel.py").replace(
        "from .neuron import", "from models.neuron import"))
    assert ref_kernel.forward is not None
    # traces of commits before the network interface name their inputs layer_input (spike times)
    return load("training.backprop_reference", source("training/backprop.py").replace(
        "from models.kernel import", "from models.kernel_reference import").replace(
        "layer_input(", "layer_input_times(").replace("layer_input_times_times(", "layer_input_times("))


def brian_forward_trace(weights, t_in, params, dtype=np.float32, bank=None):
    """Trace of a Brian2 forward pass (spike times from Brian2, events regrouped)."""
    if bank is not None:
        raise ValueError("the Brian2 variant simulates one network: use a config without per_class")
    times = brian.simulate([np.asarray(w, np.float64) for w in weights], t_in, params).times
    ins = [np.asarray(t_in)] + times[:-1]
    events = [layer_events(t, params.t_max - params.latency, dtype=dtype) for t in ins]
    return backprop.Trace(np.asarray(t_in), times, events)


class Swapped:
    """Context: ``training.backprop``'s forward_trace / backward replaced (None: kept)."""

    def __init__(self, forward_trace=None, backward=None):
        self.new = {"forward_trace": forward_trace, "backward": backward}

    def __enter__(self):
        self.old = {k: getattr(backprop, k) for k in self.new}
        for k, f in self.new.items():
            if f is not None:
                setattr(backprop, k, f)

    def __exit__(self, *exc):
        for k, f in self.old.items():
            setattr(backprop, k, f)


def real_batches(cfg, gan, data, step):
    """The real batches (and labels) of one step: consecutive images, or per class for per_class."""
    B, k = cfg.train.batch_size, cfg.train.d_steps
    real = gan.encode_real(data.train_images)
    if not gan.per_class:
        return [real[(step * k + j) * B:(step * k + j + 1) * B] for j in range(k)], None
    pools = [np.flatnonzero(data.train_labels == c) for c in range(10)]
    idx = [np.concatenate([p[((step * k + j) * B) % (len(p) - B):][:B] for p in pools]) for j in range(k)]
    return [real[i] for i in idx], [data.train_labels[i] for i in idx]


def run_steps(cfg, data, n_steps, seed=1):
    """``n_steps`` GAN steps from the config's initial weights; seconds per step (after one warm-up
    step) and the final weights."""
    gan = gan_mod.Gan.init(cfg, np.random.default_rng(cfg.seed))
    rng = np.random.default_rng(seed)
    times = []
    for s in range(n_steps + 1):
        batches, labels = real_batches(cfg, gan, data, s)
        t0 = time.perf_counter()
        gan_mod.gan_step(gan, cfg, batches, rng, real_labels=labels)
        if s:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) if times else float("nan"), gan.g.weights + gan.d.weights


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="configs/mnist.toml,configs/quick.toml")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--reference", default=REFERENCE, help="git commit of the earlier kernel ('' skips it)")
    ap.add_argument("--brian-steps", type=int, default=1, help="steps of the Brian2 variant (0 skips it)")
    args = ap.parse_args()
    data = load_digits()
    reference = load_reference(args.reference) if args.reference else None
    load = os.getloadavg()[0]
    print(f"{datetime.date.today()}, {os.cpu_count()} cores, load average at start {load:.1f}; "
          f"median of {args.steps} steps after a warm-up step (Brian2: {args.brian_steps})")
    print("| config | G / D | batch | forward + backward | s / step | samples/s | vs this kernel |")
    print("|---|---|---:|---|---:|---:|---:|")
    same = True
    for path in args.configs.split(","):
        cfg = cm.load(os.path.join(ROOT, path), cm.GanConfig)
        sizes = gan_mod.Gan.sizes(cfg)
        per_step = cfg.train.batch_size * cfg.train.d_steps * (10 if cfg.per_class else 1)
        rows = [("this kernel", *run_steps(cfg, data, args.steps))]
        if reference is not None:
            with Swapped(reference.forward_trace, reference.backward):
                rows.append((f"kernel of {args.reference}", *run_steps(cfg, data, args.steps)))
                with pinned_blas_threads():  # separates the algorithm from BLAS threads waiting for a core
                    rows.append((f"kernel of {args.reference}, one BLAS thread",
                                 *run_steps(cfg, data, args.steps)))
        if reference is not None:
            same &= all(np.array_equal(a, b) for a, b in zip(rows[0][2], rows[1][2]))
        if args.brian_steps and not cfg.per_class:
            with Swapped(brian_forward_trace):
                rows.append(("Brian2 numpy target + this backward", *run_steps(cfg, data, args.brian_steps)))
            check = run_steps(cfg, data, args.brian_steps)[1]
            same &= all(np.array_equal(a, b) for a, b in zip(check, rows[-1][2]))
        base = rows[0][1]
        for name, t, _ in rows:
            print(f"| {path} | {'-'.join(map(str, sizes['g']))} / {'-'.join(map(str, sizes['d']))} | "
                  f"{per_step} | {name} | {t:.3f} | {per_step / t:,.0f} | {t / base:.2f}x |", flush=True)
    print(f"identical weights after the same steps with every variant: {same}")


if __name__ == "__main__":
    main()
