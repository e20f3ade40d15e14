"""Forward-pass throughput and peak memory: the NumPy kernel vs a dense, time-stepped per-image
formulation (as S4NN's published code computes it) vs Brian2 (numpy, cython, cpp_standalone).

The same 784-400-2 network (S4NN initial weights, thresholds 100 mV, t_max 256) runs the same
embedded digits (drawn with replacement, seed 1) through every simulator at every batch size;
all must return identical spike times. Every (simulator, batch) runs in a fresh worker process,
so its peak resident memory (``ru_maxrss``) is its own; the table prints ms per image, images/s,
the ratio to the float32 kernel at the same batch, and that peak. Brian2 builds one network of
``batch`` copies (``batch * 784 * 400`` synapses), so it runs only up to ``--brian-max-batch``;
its times include building (and compiling: cython on a cold cache, cpp_standalone always) the
network. The dense formulation is per image; above ``--dense-max`` images it runs on the first
``--dense-max`` of the batch (its cost per image does not depend on the batch).

    python benchmarks/bench_forward.py [--batches 100,2000,10000] [--repeat 3]
        [--brian-max-batch 100] [--targets numpy,cython,cpp_standalone]
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from models import kernel  # noqa: E402
from models.coding import encode_images  # noqa: E402
from models.network import default_ranges, init_uniform  # noqa: E402
from models.neuron import THRESHOLD_EPS_MV, NeuronParams  # noqa: E402
from training.data import load_digits  # noqa: E402

PARAMS = NeuronParams((100.0, 100.0), t_max=256)


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


def inputs(batch):
    """The network's weights (float64, S4NN init, seed 0) and ``batch`` encoded digits."""
    weights = init_uniform(np.random.default_rng(0), (784, 400, 2), default_ranges(2))
    images = load_digits().test_images
    idx = np.random.default_rng(1).choice(len(images), batch, replace=True)
    return weights, encode_images(images[idx], PARAMS.t_max)


def digest(times):
    h = hashlib.sha256()
    for t in times:
        h.update(np.ascontiguousarray(t, dtype=np.int32).tobytes())
    return h.hexdigest()[:16]


def worker(sim: str, batch: int, repeat: int, dense_max: int) -> dict:
    """Time ``sim`` on ``batch`` images in this process; returns seconds, images, peak RSS, digest."""
    weights, t_in = inputs(batch)
    n = batch
    if sim == "kernel32":
        run = lambda: kernel.forward(weights, t_in, PARAMS)  # noqa: E731
    elif sim == "kernel64":
        run = lambda: kernel.forward(weights, t_in, PARAMS, dtype=np.float64)  # noqa: E731
    elif sim == "dense":
        n = min(batch, dense_max)
        run = lambda: dense_forward(weights, t_in[:n], PARAMS)  # noqa: E731
        repeat = 1
    elif sim == "none":
        run = lambda: []  # noqa: E731
    else:  # brian2 target, one run (build and compile included)
        from models import brian
        target = sim.split(":", 1)[1]
        run = lambda: brian.simulate(weights, t_in, PARAMS, target=target).times  # noqa: E731
        repeat = 1
    best, times = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        times = run()
        best = min(best, time.perf_counter() - t0)
    # spike times of the first images (all simulators run at least these): compared across workers
    m = min(batch, dense_max)
    return {"seconds": best, "images": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "digest": digest([t[:m] for t in times]) if times else ""}


def run_worker(sim, batch, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", sim, "--batches", str(batch),
           "--repeat", str(args.repeat), "--dense-max", str(args.dense_max)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


NAMES = {"kernel32": "NumPy kernel, float32 (default)", "kernel64": "NumPy kernel, float64",
         "dense": "dense time-stepped, per image", "brian:numpy": "Brian2 numpy target (build included)",
         "brian:cython": "Brian2 cython target (build included; compile if not cached)",
         "brian:cpp_standalone": "Brian2 cpp_standalone (build + compile + run)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="100,2000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--brian-max-batch", type=int, default=100)
    ap.add_argument("--targets", default="numpy,cython,cpp_standalone", help="Brian2 targets")
    ap.add_argument("--dense-max", type=int, default=2000)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.worker:
        print(json.dumps(worker(args.worker, batches[0], args.repeat, args.dense_max)))
        return

    load = os.getloadavg()[0]
    base = run_worker("none", batches[0], args)
    print(f"784-400-2, t_max 256, S4NN init, embedded digits; {platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}; {datetime.date.today()}; load average at start {load:.1f}; "
          f"a worker that only loads the inputs peaks at {base.get('peak_mb', float('nan')):.0f} MB")
    print("| batch | simulator | ms / image | images/s | vs kernel | peak RSS (MB) |")
    print("|---:|---|---:|---:|---:|---:|")
    ok = True
    for batch in batches:
        sims = ["kernel32", "kernel64", "dense"]
        if batch <= args.brian_max_batch:
            sims += [f"brian:{t}" for t in args.targets.split(",") if t]
        ref = None
        for sim in sims:
            r = run_worker(sim, batch, args)
            if "error" in r:
                print(f"| {batch:,} | {NAMES[sim]} | failed: {r['error']} | | | |")
                continue
            per = r["seconds"] / r["images"]
            if sim == "kernel32":
                ref = r
            elif r["digest"] != ref["digest"]:
                ok = False
            note = "" if r["images"] == batch else f" (first {r['images']:,} images)"
            ratio = per / (ref["seconds"] / ref["images"])
            print(f"| {batch:,} | {NAMES[sim]}{note} | {per * 1e3:.3f} | {1 / per:,.0f} | "
                  f"{ratio:.1f}x | {r['peak_mb']:.0f} |", flush=True)
    print("all simulators returned identical spike times" if ok else "SIMULATORS DISAGREE")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
