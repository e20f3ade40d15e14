"""Command-line interface: ``spiking-gan <command> ...``.

Thin layer over the library: it parses arguments, checks them, calls the
functions of :mod:`models`, :mod:`training` and :mod:`analysis`, and turns
user errors into one clear line instead of a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import numpy as np


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


def _check_out_file(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"output folder {folder} does not exist")


# --------------------------------------------------------------------- simulate
def cmd_simulate(args) -> None:
    from models import kernel
    from models.coding import encode_images
    from models.network import check_weights, default_ranges, init_uniform, parse_layers
    from models.neuron import NeuronParams

    if args.target != "numpy" and args.backend != "brian2":
        raise UserError("--target only applies to --backend brian2")
    for f in (args.out, args.raster):
        if f:
            _check_out_file(f)
    # separate streams, so that --weights reproduces the inputs of a run with the same seed
    rng_weights, rng = (np.random.default_rng([args.seed, k]) for k in (0, 1))
    if args.weights:
        weights = _load_weights(args.weights)
        sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        if args.layers and parse_layers(args.layers) != sizes:
            raise UserError(f"--layers {args.layers} does not match the weights in {args.weights} "
                            f"({','.join(map(str, sizes))})")
    else:
        sizes = parse_layers(args.layers or "784,400,2")
        weights = init_uniform(rng_weights, sizes, default_ranges(len(sizes) - 1))
    check_weights(weights, sizes)
    thresholds = [float(x) for x in args.threshold.split(",")]
    if len(thresholds) == 1:
        thresholds *= len(weights)
    params = NeuronParams(tuple(thresholds), t_max=args.t_max, dt_ms=args.dt)
    if params.n_layers != len(weights):
        raise UserError(f"{params.n_layers} thresholds given for {len(weights)} layers")

    if args.digits:
        from training.data import load_digits
        if sizes[0] != 784:
            raise UserError(f"--digits needs 784 input neurons, the network has {sizes[0]}")
        data = load_digits()
        idx = rng.choice(len(data.test_images), size=args.batch, replace=args.batch > len(data.test_images))
        t_in = encode_images(data.test_images[idx], params.t_max)
    else:
        t_in = rng.integers(0, params.t_max + 1, size=(args.batch, sizes[0])).astype(np.int32)

    if args.backend == "numpy":
        times = kernel.forward(weights, t_in, params)
    else:
        from models.brian import simulate
        times = simulate(weights, t_in, params, target=args.target).times

    arrays = {"input_times": t_in, "thresholds": np.array(params.thresholds),
              "t_max": np.array(params.t_max), "dt_ms": np.array(params.dt_ms)}
    arrays.update({f"weights_{k}": w for k, w in enumerate(weights)})
    arrays.update({f"times_{k + 1}": t for k, t in enumerate(times)})
    np.savez_compressed(args.out, **arrays)
    spikes = [int((t < params.t_max).sum()) for t in times]
    print(f"simulated {args.batch} samples through {','.join(map(str, sizes))} with {args.backend}"
          f"{' (' + args.target + ')' if args.backend == 'brian2' else ''}; "
          f"spikes per sample per layer: {', '.join(f'{s / args.batch:.1f}' for s in spikes)}; "
          f"wrote {args.out}")
    if args.raster:
        from analysis.plots import plot_raster
        names = ["input"] + [f"layer {k}" for k in range(1, len(times))] + ["output"]
        plot_raster([t_in[0]] + [t[0] for t in times], params.t_max, params.dt_ms, args.raster,
                    names=names, title=f"sample 0, {args.backend} backend")
        print(f"wrote {args.raster}")


def _load_weights(path: str) -> List[np.ndarray]:
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = sorted((k for k in z.files if k.startswith("weights_")), key=lambda k: int(k.split("_")[1]))
            weights = [np.array(z[k]) for k in keys]
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read weights from {path}: {exc}")
    if not weights:
        raise UserError(f"{path} holds no weights_0 .. weights_L arrays")
    return weights


# ------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spiking-gan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="run a TTFS network on random inputs or digits",
                       description="Run a layered TTFS network of IF neurons (random S4NN-style "
                       "weights, or --weights) on random input spike times or on the embedded "
                       "MNIST digits, with the NumPy kernel or Brian2, and save all spike times.")
    p.add_argument("--layers", help="layer sizes, e.g. 784,400,2 (default 784,400,2)")
    p.add_argument("--weights", help="load weights_0..weights_L from an .npz (e.g. an earlier --out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch", type=int, default=32, help="number of samples (default 32)")
    p.add_argument("--backend", choices=["numpy", "brian2"], default="numpy")
    p.add_argument("--target", choices=["numpy", "cython", "cpp_standalone"], default="numpy",
                   help="Brian2 code generation target (with --backend brian2)")
    p.add_argument("--digits", action="store_true", help="use the embedded MNIST digits as inputs")
    p.add_argument("--threshold", default="100", help="threshold in mV, one or one per layer (default 100)")
    p.add_argument("--t-max", type=int, default=256, help="window in steps (default 256)")
    p.add_argument("--dt", type=float, default=1.0, help="step in ms (default 1)")
    p.add_argument("--out", required=True, help="output .npz: input_times, weights_k, times_k, "
                   "thresholds, t_max, dt_ms (no spike = t_max)")
    p.add_argument("--raster", help="write a spike raster PNG of sample 0 across all layers")
    p.set_defaults(func=cmd_simulate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "batch", 1) is not None and getattr(args, "batch", 1) < 1:
        parser.error("--batch must be >= 1")
    try:
        args.func(args)
    except (UserError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"spiking-gan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiking-gan {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
