"""Speed-up of a parameter sweep with 2 Dask workers versus 1 on this machine.

Runs the same 4-point sweep (``configs/dense_single.toml``, loss.kind x seed, a few epochs on part of
the training images, evaluation on 500 samples) into fresh temporary folders, on a LocalCluster
of 1 and then of 2 worker processes with one thread each, and prints a Markdown table of the
wall times (the whole ``run_sweep``: cluster start, quality classifier, points, report), the
mean time of a point on its worker, the speed-up and the load average when each sweep started
(on a shared machine other users' processes take cores too).

    python benchmarks/bench_sweep.py [--epochs 3] [--max-train 2000] [--workers 1,2]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from experiments.sweep import load_sweep, run_sweep  # noqa: E402


def sweep_text(epochs: int, max_train: int) -> str:
    """The benchmark's sweep file: 4 points of configs/dense_single.toml."""
    base = json.dumps(os.path.join(ROOT, "configs", "dense_single.toml"))
    return (f"base = {base}\nn_eval_samples = 500\n[set]\n\"train.epochs\" = {epochs}\n"
            f"\"data.max_train\" = {max_train}\n[grid]\n\"loss.kind\" = [\"ttfs\", \"aggressive\"]\n"
            f"\"seed\" = [0, 1]\n")


def time_sweep(path: str, workers: int) -> tuple[float, float, float]:
    """Wall time of the whole sweep (s), the mean time of a point on its worker (s) and the
    machine's 1-minute load average when the sweep started (other users' processes count)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"bench_sweep_{workers}w_") as out:
        t0 = time.perf_counter()
        outcome = run_sweep(load_sweep(path), out, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    if outcome.failed:
        raise RuntimeError(f"{outcome.failed} points failed")
    return wall, sum(r["elapsed_s"] for r in outcome.results) / len(outcome.results), load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=2000, help="training images per point")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (first = reference)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as folder:
        path = os.path.join(folder, "bench.toml")
        with open(path, "w") as fh:
            fh.write(sweep_text(args.epochs, args.max_train))
        print(f"4 points of configs/dense_single.toml (loss.kind x seed), {args.epochs} epochs on "
              f"{args.max_train} images, 500 evaluation samples; {os.cpu_count()} cores", flush=True)
        rows = [(w, *time_sweep(path, w)) for w in map(int, args.workers.split(","))]
    print("\n| workers | sweep wall time (s) | mean point time (s) | speed-up | load average at start |\n"
          "|---|---|---|---|---|")
    for w, wall, point, load in rows:
        print(f"| {w} | {wall:.1f} | {point:.1f} | {rows[0][1] / wall:.2f}x | {load:.1f} |")


if __name__ == "__main__":
    main()
