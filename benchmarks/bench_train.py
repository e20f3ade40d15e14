"""GAN training throughput: samples/s of a ramp pair's training beside the cost of its matrix
products alone, and (``--kernels``) the IF model's steps with the kernel of an earlier commit and
with Brian2.

**A ramp pair** (``--config``; default: the main job, the defaults = ``configs/quick_single.toml``:
conv G 100-32x7x7-16x14x14-1x28x28, D 784-256-2, batch 50, R1 at real images;
``configs/dense_single.toml`` is the dense pair G 100-512-784 that issue 22 first measured): epochs
of ``training.gan.gan_step`` at the data set's size (4,000 embedded digits: 80 steps; ``--images``
for another epoch length, the data reused), as ``spiking-gan train`` runs them without its per-epoch
checkpoint and grid, with one BLAS thread (the default, bit-identical on every machine) and with
``--threads`` N (``train.threads``). Beside each, in the same run and alternating with it, the same
epoch's matrix products alone: every product of a step (:func:`step_matmuls`: the same shapes,
float32, the same transposed operands) on random operands, as many times as the epoch has steps,
with the same thread count. ``ratio`` = training time / products time, the median of the per-repeat
ratios (each measured back to back, so a busy machine slows both alike). ``--numpy`` times the
NumPy code instead of the compiled loops of :mod:`models.native` (the same results). ``--profile
N`` prints the N functions with the most own time in one one-thread epoch (cProfile).

**Kernels** (``--kernels configs/s4nn_single.toml,...``; IF configs): the same ``gan_step`` with
this kernel, with the kernel and backward pass of an earlier commit (today's code path before the
speed-up of issue 14, loaded from git; also with one BLAS thread, as this kernel uses), and with
every forward pass run by Brian2 (numpy target). All variants execute exactly the same learning
rule; the script checks that all give identical weights after the same steps. Prints Markdown
tables.

    python benchmarks/bench_train.py [--config CONFIG] [--images 4000] [--repeats 5]
        [--threads 2] [--numpy] [--profile 0] [--kernels CONFIGS --steps 5 --reference 9f64838 --brian-steps 1]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import importlib.util
import os
import pstats
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from models import brian, native  # noqa: E402  (brian2 itself is imported by the Brian2 variant only)
from models.kernel import blas_threads, layer_events, pinned_blas_threads  # noqa: E402
from training import backprop  # noqa: E402
from training import config as cm  # noqa: E402
from training import gan as gan_mod  # noqa: E402
from training.data import load_dataset, load_digits  # noqa: E402
from training.networks import conv_geometries, convolutional  # noqa: E402

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


# ------------------------------------------------------------------------ the pair vs its products
def layer_products(geometries, size) -> list:
    """Per layer of a ramp network, its three products (``linear``, ``adjoint``, ``weight_grad``
    of :class:`training.exact.Layer` / :class:`~training.exact.ConvLayer`) as functions of the
    batch ``n`` giving ``(rows, inner, cols, a transposed, b transposed)``.

    A dense layer ``(n_in, n_out)``: ``x @ W``, ``g @ W.T``, ``x.T @ g``. A convolutional one
    (:class:`models.ramp.ConvGeometry`, ``M = n h w`` kernel positions on its small side, ``K =
    C_big k^2``): the strided convolution ``down`` is the im2col product ``(M, K) @ (K, C_small)``,
    its adjoint ``up`` ``(M, C_small) @ (C_small, K)``, the kernel's gradient ``(C_small, M) @ (M,
    K)``; a transposed layer (G) maps with ``up`` and sends errors back with ``down``.
    """
    out = []
    for k, geo in enumerate(geometries):
        a, b = size[k], size[k + 1]
        if geo is None:
            out.append({"linear": lambda n, a=a, b=b: (n, a, b, False, False),
                        "adjoint": lambda n, a=a, b=b: (n, b, a, False, True),
                        "weight_grad": lambda n, a=a, b=b: (a, n, b, True, False)})
            continue
        cs, cb, kk = geo.small[0], geo.big[0], geo.kernel ** 2
        hw = geo.small[1] * geo.small[2]
        down = lambda n, hw=hw, cs=cs, K=cb * kk: (n * hw, K, cs, False, False)  # noqa: E731
        up = lambda n, hw=hw, cs=cs, K=cb * kk: (n * hw, cs, K, False, False)  # noqa: E731
        grad = lambda n, hw=hw, cs=cs, K=cb * kk: (cs, n * hw, K, False, False)  # noqa: E731
        out.append({"linear": up if geo.transposed else down, "adjoint": down if geo.transposed else up,
                    "weight_grad": grad})
    return out


def step_matmuls(cfg) -> list[tuple[int, int, int, bool, bool]]:
    """Every matrix product of one ramp ``gan_step`` of ``cfg``, as ``(rows, inner, cols, a
    transposed, b transposed)``: the products of :mod:`training.exact` in the order the step
    makes them (float32 operands; a transposed operand is a ``.T`` view, as there), dense and
    convolutional layers alike (:func:`layer_products`).

    Per D step (``train.d_steps``): G forward on B fakes, D forward on B real + B fake, D's
    weight gradients and the errors between its layers, and the R1 penalty at the B real images
    (``ramp.r1 > 0``: back to the input, then forwards with the gradients). The G step: G and D
    forward on B fakes, D's error back to the pixels, G's weight gradients and inner errors.
    """
    if cfg.neuron.model != "ramp":
        raise ValueError("step_matmuls lists the products of the ramp model's step (neuron.model = 'ramp')")
    size = gan_mod.Gan.sizes(cfg)
    g = layer_products(conv_geometries(cfg, "g"), size["g"])
    d = layer_products(conv_geometries(cfg, "d"), size["d"])
    B = cfg.train.batch_size
    out: list[tuple[int, int, int, bool, bool]] = []

    def forward(net, n):  # exact.forward_trace
        out.extend(layer["linear"](n) for layer in net)

    def backward(net, n, weights=True, to_input=False):  # exact._backward
        for k in range(len(net) - 1, -1, -1):
            if weights:
                out.append(net[k]["weight_grad"](n))
            if k > 0 or to_input:
                out.append(net[k]["adjoint"](n))

    def penalty(net, n):  # exact.input_gradient_penalty: back to the input, then forwards
        backward(net, n, weights=False, to_input=True)
        for k in range(len(net)):
            out.append(net[k]["weight_grad"](n))
            if k < len(net) - 1:
                out.append(net[k]["linear"](n))

    for _ in range(cfg.train.d_steps):
        forward(g, B)
        forward(d, 2 * B)
        backward(d, 2 * B)
        if cfg.ramp.r1 > 0:
            penalty(d, B)
    forward(g, B)
    forward(d, B)
    backward(d, B, weights=False, to_input=True)
    backward(g, B)
    return out


def matmul_operands(shapes, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random float32 operands of :func:`step_matmuls`' products, transposed views where the step's
    are. Operands of the same stored shape are one array, as in the step (a layer's ``W`` in
    ``x @ W`` and ``g @ W.T``, its input ``x`` in ``x @ W`` and ``x.T @ g``), so that the products
    find them in the CPU's caches as often as the step's do."""
    stored: dict[tuple[int, int], np.ndarray] = {}

    def operand(rows, cols, transposed):
        shape = (cols, rows) if transposed else (rows, cols)
        if shape not in stored:
            stored[shape] = rng.standard_normal(shape).astype(np.float32)
        return stored[shape].T if transposed else stored[shape]
    return [(operand(m, k, ta), operand(k, n, tb)) for m, k, n, ta, tb in shapes]


def time_products(operands, steps: int, threads: int) -> tuple[float, float]:
    """Seconds (wall clock, CPU time of this process) of ``steps`` steps' products alone with
    ``threads`` BLAS threads."""
    with blas_threads(threads):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            for a, b in operands:
                a @ b
        return time.perf_counter() - t0, time.process_time() - c0


class Training:
    """A ramp pair's training as ``training.trainer.train_gan`` runs it (one generator for the
    initial weights and the steps, an epoch's order drawn from it), epoch after epoch."""

    def __init__(self, cfg, data, images: int):
        self.cfg, self.labels = cfg, data.train_labels
        self.rng = np.random.default_rng(cfg.seed)
        self.gan = gan_mod.Gan.init(cfg, self.rng)
        self.t_real = self.gan.encode_real(data.train_images)
        self.B, self.k = cfg.train.batch_size, cfg.train.d_steps
        self.steps = images // (self.B * self.k)

    def epoch(self, threads: int) -> tuple[float, float]:
        """Seconds (wall clock, CPU time) of one epoch of :attr:`steps` steps with ``threads`` BLAS threads."""
        n = len(self.t_real)
        order = np.concatenate([self.rng.permutation(n) for _ in range(-(-self.steps * self.B * self.k // n))])
        per = self.B * self.k
        with blas_threads(threads):
            t0, c0 = time.perf_counter(), time.process_time()
            for s in range(self.steps):
                parts = [order[s * per + j * self.B:s * per + (j + 1) * self.B] for j in range(self.k)]
                gan_mod.gan_step(self.gan, self.cfg, [self.t_real[p] for p in parts], self.rng,
                                 [self.labels[p] for p in parts])
            return time.perf_counter() - t0, time.process_time() - c0


def main_job_table(cfg, images: int, repeats: int, threads: list[int], top: int) -> None:
    """Print a ramp pair's training beside its products (module docstring), per thread count."""
    data = load_dataset(cfg.data)
    runs = {n: Training(cfg, data, images) for n in threads}
    steps = runs[threads[0]].steps
    per_step = cfg.train.batch_size * cfg.train.d_steps
    operands = matmul_operands(step_matmuls(cfg), np.random.default_rng(0))
    flops = 2 * sum(m * k * n for m, k, n, _, _ in step_matmuls(cfg))
    res: dict[int, list[tuple[tuple[float, float], tuple[float, float]]]] = {n: [] for n in threads}
    for r in range(repeats + 1):  # the first round warms up (allocations, BLAS threads)
        for n in threads:
            t_train = runs[n].epoch(n)
            t_mm = time_products(operands, steps, n)
            if r:
                res[n].append((t_train, t_mm))
    sizes = gan_mod.Gan.sizes(cfg)
    kind = "conv" if convolutional(cfg) else "dense"
    print(f"{kind} pair: G {'-'.join(map(str, sizes['g']))}, D {'-'.join(map(str, sizes['d']))}, batch "
          f"{cfg.train.batch_size}, R1 {cfg.ramp.r1}; an epoch = {steps} steps = {steps * per_step:,} images; "
          f"{len(operands)} products per step ({flops / 1e6:.0f} MFLOP); median of {repeats} epochs after a warm-up")
    print("| BLAS threads | training s / epoch | samples/s | products alone s / epoch | products GFLOP/s | "
          "training / products | the same in CPU time |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in threads:
        t_train = float(np.median([a[0] for a, _ in res[n]]))
        t_mm = float(np.median([b[0] for _, b in res[n]]))
        ratio = float(np.median([a[0] / b[0] for a, b in res[n]]))
        cpu = float(np.median([a[1] / b[1] for a, b in res[n]]))
        print(f"| {n} | {t_train:.3f} | {steps * per_step / t_train:,.0f} | {t_mm:.3f} | "
              f"{flops * steps / t_mm / 1e9:.1f} | {ratio:.2f}x | {cpu:.2f}x |", flush=True)
    if top:
        prof = cProfile.Profile()
        prof.runcall(runs[threads[0]].epoch, threads[0])
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)


# ------------------------------------------------------------------------------ kernels (IF model)
def kernel_table(paths: list[str], steps: int, ref: str, brian_steps: int) -> None:
    """Print the IF model's steps with this kernel, the kernel of ``ref`` and Brian2 (module docstring)."""
    data = load_digits()
    reference = load_reference(ref) if ref else None
    print(f"kernels: median of {steps} steps after a warm-up step (Brian2: {brian_steps})")
    print("| config | G / D | batch | forward + backward | s / step | samples/s | vs this kernel |")
    print("|---|---|---:|---|---:|---:|---:|")
    same = True
    for path in paths:
        cfg = cm.load(os.path.join(ROOT, path), cm.GanConfig)
        sizes = gan_mod.Gan.sizes(cfg)
        per_step = cfg.train.batch_size * cfg.train.d_steps * (10 if cfg.per_class else 1)
        rows = [("this kernel", *run_steps(cfg, data, steps))]
        if reference is not None:
            with Swapped(reference.forward_trace, reference.backward):
                rows.append((f"kernel of {ref}", *run_steps(cfg, data, steps)))
                with pinned_blas_threads():  # separates the algorithm from BLAS threads waiting for a core
                    rows.append((f"kernel of {ref}, one BLAS thread", *run_steps(cfg, data, steps)))
            same &= all(np.array_equal(a, b) for a, b in zip(rows[0][2], rows[1][2]))
        if brian_steps and not cfg.per_class:
            with Swapped(brian_forward_trace):
                rows.append(("Brian2 numpy target + this backward", *run_steps(cfg, data, brian_steps)))
            check = run_steps(cfg, data, brian_steps)[1]
            same &= all(np.array_equal(a, b) for a, b in zip(check, rows[-1][2]))
        base = rows[0][1]
        for name, t, _ in rows:
            print(f"| {path} | {'-'.join(map(str, sizes['g']))} / {'-'.join(map(str, sizes['d']))} | "
                  f"{per_step} | {name} | {t:.3f} | {per_step / t:,.0f} | {t / base:.2f}x |", flush=True)
    print(f"identical weights after the same steps with every variant: {same}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="a ramp config (default: the main job, configs/quick_single.toml; "
                    "the dense pair: configs/dense_single.toml)")
    ap.add_argument("--images", type=int, help="images per timed epoch (default: the data set's)")
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per thread count")
    ap.add_argument("--threads", type=int, default=2, help="the thread count beside one (1: one only)")
    ap.add_argument("--numpy", action="store_true", help="time the NumPy code instead of the compiled "
                    "loops of models/native.py (the same results; SPIKING_GAN_NATIVE=0 does the same)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the N functions with the "
                    "most own time in one one-thread epoch")
    ap.add_argument("--kernels", default="", help="IF configs of the kernel comparison, comma-separated "
                    "(e.g. configs/s4nn_single.toml; default: none)")
    ap.add_argument("--steps", type=int, default=5, help="steps per variant of the kernel comparison")
    ap.add_argument("--reference", default=REFERENCE, help="git commit of the earlier kernel ('' skips it)")
    ap.add_argument("--brian-steps", type=int, default=1, help="steps of the Brian2 variant (0 skips it)")
    args = ap.parse_args()
    cfg = cm.load(args.config, cm.GanConfig) if args.config else cm.GanConfig()
    if cfg.neuron.model != "ramp":
        ap.error("the training table times a ramp pair (neuron.model = 'ramp'); IF configs go to --kernels")
    print(f"{datetime.date.today()}, {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}")
    images = args.images or len(load_dataset(cfg.data).train_images)
    with native.disabled() if args.numpy else contextlib.nullcontext():
        print(f"compiled loops (models/native.py): {'used' if native.library() else 'not used: the NumPy code'}")
        main_job_table(cfg, images, args.repeats, sorted({1, args.threads}), args.profile)
    if args.kernels:
        kernel_table(args.kernels.split(","), args.steps, args.reference, args.brian_steps)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
