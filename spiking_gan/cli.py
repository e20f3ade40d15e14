"""Command-line interface: ``spiking-gan <command> ...``.

Thin layer over the library: it parses arguments, checks them, calls the
functions of :mod:`models`, :mod:`training` and :mod:`analysis`, and turns
user errors into one clear line instead of a traceback.
"""
from __future__ import annotations

import argparse
import json
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


# ------------------------------------------------------------------- configs
def _overrides(args) -> dict:
    from training.config import parse_value
    out = {}
    for item in getattr(args, "set", None) or []:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE (e.g. loss.gamma=5), got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    for flag, key in (("loss", "loss.kind"), ("seed", "seed"), ("epochs", "train.epochs"),
                      ("dataset", "data.dataset"), ("data_dir", "data.data_dir")):
        if getattr(args, flag, None) is not None:
            out[key] = getattr(args, flag)
    return out


def _load_config(args, cls):
    from training import config as cm
    overrides = _overrides(args)
    if args.config:
        return cm.load(args.config, cls, overrides)
    return cm.override(cls(), overrides)


# ------------------------------------------------------------------------ train
def cmd_train(args) -> None:
    from training.config import GanConfig
    from training.trainer import train_gan

    if args.resume and not args.config:  # the run's recorded config, maybe extended
        summary = train_gan(None, args.out, resume=True, progress=not args.quiet,
                            overrides=_overrides(args))
    else:
        if not args.config:
            raise UserError("give --config (e.g. configs/quick.toml), or --resume")
        summary = train_gan(_load_config(args, GanConfig), args.out, resume=args.resume,
                            progress=not args.quiet)
    print(f"run {args.out}: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()
                                          if isinstance(v, (int, float))))


# ----------------------------------------------------------------------- sample
def cmd_sample(args) -> None:
    from training.trainer import load_gan

    _check_out_file(args.out)
    if args.grid:
        _check_out_file(args.grid)
    if args.n < 1:
        raise UserError("--n must be >= 1")
    gan, cfg, meta = load_gan(args.run)
    images, times = gan.generate(np.random.default_rng(args.seed), args.n)
    extra = {"labels": gan.default_labels(args.n)} if gan.conditional else {}
    np.savez_compressed(args.out, images=images, spike_times=times, t_max=np.array(cfg.neuron.t_max),
                        epoch=np.array(meta["epoch"]), **extra)
    print(f"wrote {args.n} samples of {args.run} (epoch {meta['epoch']}) to {args.out}")
    if args.grid:
        from analysis.plots import plot_grid
        plot_grid(images[:100 if gan.conditional else 64], args.grid,
                  title=f"{os.path.basename(os.path.normpath(args.run))}, epoch {meta['epoch']}"
                  + (", one class per column" if gan.conditional else ""), ncols=10 if gan.conditional else 8)
        print(f"wrote {args.grid}")


# --------------------------------------------------------------------- classify
def cmd_classify(args) -> None:
    from training import checkpoint
    from training import config as cm
    from training.classifier import train
    from training.config import ClassifierConfig
    from training.data import load_dataset
    from training.runinfo import atomic_json, atomic_write, run_record

    cfg = _load_config(args, ClassifierConfig)
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise UserError(f"output folder {parent} does not exist")
    os.makedirs(args.out, exist_ok=True)
    atomic_write(os.path.join(args.out, "config.toml"), cm.to_toml(cfg))
    atomic_json(os.path.join(args.out, "run.json"), run_record(cfg.seed, {"kind": "classifier"}))
    data = load_dataset(cfg.data)
    log = open(os.path.join(args.out, "metrics.jsonl"), "w")

    def on_epoch(epoch, m):
        log.write(json.dumps(m) + "\n")
        log.flush()
        if not args.quiet and m.get("kind") == "average":
            print(f"average of the last {m['averaged_epochs']} epochs' weights: test acc "
                  f"{m['test_accuracy']:.3f}, decision {m['test_decision_time_ms']:.1f} ms", flush=True)
        elif not args.quiet:
            print(f"epoch {m['epoch']}: train acc {m['train_accuracy']:.3f}, test acc "
                  f"{m['test_accuracy']:.3f}, decision {m['test_decision_time_ms']:.1f} ms, "
                  f"{m['test_spikes_per_image']:.0f} spikes/image", flush=True)

    weights, history = train(cfg, data.train_images, data.train_labels, data.test_images,
                             data.test_labels, progress=not args.quiet, on_epoch=on_epoch)
    log.close()
    last = history[-1]
    result = {"test_accuracy": last["test_accuracy"], "decision_time_ms": last["test_decision_time_ms"],
              "spikes_per_image": last["test_spikes_per_image"],
              "no_decision_rate": last["test_no_decision_rate"], "epochs": len(history),
              "n_train": int(len(data.train_images)), "n_test": int(len(data.test_images))}
    checkpoint.save(os.path.join(args.out, "weights.npz"), {"w": weights}, {"epoch": len(history)})
    atomic_json(os.path.join(args.out, "metrics.json"), result)
    print(f"test accuracy {result['test_accuracy']:.4f}, decision time {result['decision_time_ms']:.1f} ms, "
          f"{result['spikes_per_image']:.1f} spikes per image -> {os.path.join(args.out, 'metrics.json')}")


# ---------------------------------------------------------------------- inspect
def cmd_inspect(args) -> None:
    from analysis.inspect import inspect_sample
    from training.trainer import load_gan

    gan, cfg, meta = load_gan(args.run)
    neurons = None
    if args.neurons:
        try:
            neurons = [int(x) for x in args.neurons.split(",")]
        except ValueError:
            raise UserError(f"--neurons expects comma-separated pixel indices, got {args.neurons!r}")
    out = args.out or os.path.join(args.run, "inspect")
    paths = inspect_sample(gan, args.sample, out, neurons, seed=args.seed, target=args.target)
    print(f"sample {args.sample} of {args.run} (epoch {meta['epoch']}) through Brian2: "
          + ", ".join(paths.values()))


# ------------------------------------------------------------------------ sweep
def cmd_sweep(args) -> None:
    from training.sweep import load_sweep, point_label, run_sweep

    if args.scheduler and args.workers is not None:
        raise UserError("--workers sets the size of the local cluster; with --scheduler the "
                        "scheduler's workers run the points")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    if args.retries is not None and args.retries < 0:
        raise UserError("--retries must be >= 0")
    sweep = load_sweep(args.sweep)
    dropped = f" ({sweep.duplicates} repeated draws dropped)" if sweep.duplicates else ""
    if args.dry_run:
        print(f"{args.sweep}: {len(sweep.points)} valid points{dropped}")
        for p in sweep.points:
            print(f"  {p.id}: {point_label(p.overrides)}")
        return
    if not args.quiet:
        where = args.scheduler or f"a local cluster of {args.workers or 2} workers"
        print(f"sweep {args.sweep}: {len(sweep.points)} points{dropped} on {where} -> {args.out}",
              flush=True)
    outcome = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers or 2,
                        retries=args.retries, progress=not args.quiet)
    print(f"{len(sweep.points)} points: {outcome.ran} run, {outcome.skipped} skipped (done before), "
          f"{outcome.failed} failed, in {outcome.seconds:.1f} s; summary: {outcome.report['csv']}, "
          f"{outcome.report['md']}")
    if outcome.failed:
        failed = [r for r in outcome.results if r["status"] == "failed"]
        raise RuntimeError(f"{outcome.failed} point(s) failed, e.g. {failed[0]['point']}: "
                           f"{failed[0]['error'].splitlines()[0]} (all errors in {outcome.report['md']})")


# --------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> None:
    from analysis.report import format_metrics, run_report

    if args.n < 2:
        raise UserError("--n must be >= 2")
    if not os.path.isfile(os.path.join(args.run, "config.toml")):
        raise UserError(f"{args.run} is not a run folder (no config.toml)")
    out = args.out or os.path.join(args.run, "evaluation")
    _check_out_file(out)
    rep = run_report(args.run, out, n_samples=args.n, with_quality=not args.no_quality,
                     brian=not args.no_brian, target=args.target)
    print(format_metrics(rep["metrics"]))
    print(f"wrote {', '.join(sorted(os.path.basename(p) for p in rep['files'].values()))} to {out}")


# --------------------------------------------------------------- compare-losses
def _variants(text: Optional[str]) -> Optional[List[str]]:
    return [v.strip().upper() for v in text.split(",") if v.strip()] if text else None


def cmd_compare_losses(args) -> None:
    import time

    from analysis.compare import compare_losses
    from training.config import GanConfig

    if not args.config:
        raise UserError("give --config (e.g. configs/quick.toml)")
    _check_out_file(args.out)
    cfg = _load_config(args, GanConfig)
    res = compare_losses(cfg, args.out, args.seeds, variants=_variants(args.variants), n_samples=args.n,
                         ann=not args.no_ann, progress=not args.quiet,
                         header=f"Produced by `spiking-gan {' '.join(args.argv)}` on "
                                f"{time.strftime('%Y-%m-%d %H:%M %Z')}.")
    with open(res["files"]["loss_comparison.md"]) as fh:
        print(fh.read())
    print("wrote " + ", ".join(res["files"].values()))


# ---------------------------------------------------------------------- figures
def cmd_figures(args) -> None:
    from analysis.figures import make_figures

    _check_out_file(args.out)
    if args.runs_dir:
        _check_out_file(args.runs_dir)
    make_figures(args.out, full=args.full, n_seeds=args.seeds, runs_dir=args.runs_dir,
                 config_path=args.config, overrides=_overrides(args), n_samples=args.n,
                 variants=_variants(args.variants), brian=not args.no_brian, progress=not args.quiet,
                 command="spiking-gan " + " ".join(args.argv))


def _add_comparison_args(p):
    p.add_argument("--seeds", type=int, default=3, help="seeds per loss: the config's seed, +1, ... (default 3)")
    p.add_argument("--variants", help="Aggressive TTFS variants as their own groups, e.g. A,B,C "
                   "(default: the config's loss.variant)")
    p.add_argument("--n", type=int, default=1000, help="generated samples per evaluation (default 1000)")


def _add_target_arg(p, help: str) -> None:
    from models.brian import TARGETS  # brian2 itself is imported only when a simulation runs
    p.add_argument("--target", choices=TARGETS, default="numpy", help=help)


def _add_config_args(p, loss=True):
    p.add_argument("--config", help="TOML config file (see configs/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set loss.gamma=5 (repeatable)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    if loss:
        p.add_argument("--loss", choices=["ttfs", "aggressive"], help="override loss.kind")
    p.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"],
                   help="override data.dataset: the embedded digits (default) or a torchvision data set")
    p.add_argument("--data-dir", help="override data.data_dir: torchvision root holding MNIST/raw or "
                   "FashionMNIST/raw (read without network)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


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
    _add_target_arg(p, "Brian2 code generation target (with --backend brian2)")
    p.add_argument("--digits", action="store_true", help="use the embedded MNIST digits as inputs")
    p.add_argument("--threshold", default="100", help="threshold in mV, one or one per layer (default 100)")
    p.add_argument("--t-max", type=int, default=256, help="window in steps (default 256)")
    p.add_argument("--dt", type=float, default=1.0, help="step in ms (default 1)")
    p.add_argument("--out", required=True, help="output .npz: input_times, weights_k, times_k, "
                   "thresholds, t_max, dt_ms (no spike = t_max)")
    p.add_argument("--raster", help="write a spike raster PNG of sample 0 across all layers")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train a Spiking-GAN",
                       description="Train the Spiking-GAN (spiking G and D, S4NN rule) into a run folder: "
                       "config.toml, run.json, checkpoint.npz (every epoch), metrics.jsonl, samples/*.png.")
    _add_config_args(p)
    p.add_argument("--out", required=True, help="run folder, e.g. runs/quick")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate samples from a trained run")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", required=True, help=".npz with images (n, 28, 28) in [0, 1] and spike_times (n, 784)")
    p.add_argument("--grid", help="PNG grid of the first 64 samples (conditional GAN: 100, one class per column)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("classify", help="S4NN sanity check: train a spiking classifier on the digits",
                       description="Train a 784-400-10 spiking classifier with the same learning rule; "
                       "writes DIR/metrics.json (test_accuracy, decision_time_ms, spikes_per_image).")
    _add_config_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("inspect", help="one sample through a trained run in Brian2: raster + membrane traces")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--sample", type=int, default=0, help="which noise sample (default 0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--neurons", help="G output neurons (pixel indices) to trace, e.g. 350,400 "
                   "(default: earliest, median and latest pixel)")
    _add_target_arg(p, "Brian2 code generation target")
    p.add_argument("--out", help="output folder (default RUN/inspect)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("evaluate", help="all measures of a trained run, and its figures",
                       description="Evaluate a run (analysis/evaluate.py: D decision time, G completion, "
                       "spikes, silent neurons, classifier-FID, KID, coverage) and draw its figures "
                       "(samples, sparsity, inference-time and spike-time histograms, training curves, "
                       "Brian2 raster and membrane traces). Writes OUT/metrics.json and OUT/*.png.")
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--n", type=int, default=1000, help="generated samples (and real test images) (default 1000)")
    p.add_argument("--out", help="output folder (default RUN/evaluation)")
    p.add_argument("--no-quality", action="store_true", help="skip the classifier-based quality measures")
    p.add_argument("--no-brian", action="store_true", help="skip the Brian2 raster and membrane traces")
    _add_target_arg(p, "Brian2 code generation target of the raster")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare-losses", help="TTFS vs Aggressive TTFS on the same seeds and budget",
                       description="Train the GAN with loss.kind=ttfs and loss.kind=aggressive on the same "
                       "seeds (runs in OUT/runs/{loss}_seed{s}; finished runs are reused, interrupted ones "
                       "resumed), evaluate each, train the same-size non-spiking ANN GAN as the quality "
                       "reference, and write OUT/loss_comparison.{csv,md,png}.")
    _add_config_args(p, loss=False)
    p.add_argument("--out", required=True, help="output folder")
    _add_comparison_args(p)
    p.add_argument("--no-ann", action="store_true", help="skip the non-spiking ANN GAN reference")
    p.set_defaults(func=cmd_compare_losses)

    p = sub.add_parser("figures", help="regenerate every figure and table of the study",
                       description="Train (or reuse) the runs of the study and write all figures and "
                       "tables to OUT: loss comparison (CSV, MD, PNG) with the ANN GAN reference, sample "
                       "grids, and the run report of one run per loss (Brian2 raster, membrane traces, "
                       "sparsity, inference-time and spike-time histograms, training curves), plus "
                       "OUT/README.md. Quick mode (configs/quick_single.toml) by default. Resumable.")
    p.add_argument("--out", required=True, help="output folder, e.g. figures/")
    p.add_argument("--full", action="store_true", help="configs/mnist.toml instead of configs/quick_single.toml (hours)")
    p.add_argument("--runs-dir", help="folder of the runs (default runs/figures, with --full runs/figures-full)")
    _add_comparison_args(p)
    p.add_argument("--no-brian", action="store_true", help="skip the Brian2 rasters and membrane traces")
    p.add_argument("--config", help="(advanced) this config instead of quick_single.toml / mnist.toml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="(advanced) override a config value")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("sweep", help="a parameter sweep (grid or random) on Dask",
                       description="Train and evaluate one GAN per point of a sweep file (TOML, see "
                       "sweeps/) on a Dask LocalCluster or a running scheduler; re-running skips "
                       "finished points. Writes OUT/points/<id>/, OUT/summary.csv, OUT/summary.md, "
                       "OUT/plots/*.png.")
    p.add_argument("sweep", help="sweep file, e.g. sweeps/tiny.toml")
    p.add_argument("--out", required=True, help="output folder, e.g. sweeps_out/tiny")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                   "(default: a LocalCluster on this machine)")
    p.add_argument("--workers", type=int, help="worker processes of the LocalCluster (default 2)")
    p.add_argument("--retries", type=int, help="extra attempts of a failing point (default: the "
                   "sweep file's retries, else 1)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the points, run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    if getattr(args, "batch", 1) is not None and getattr(args, "batch", 1) < 1:
        parser.error("--batch must be >= 1")
    try:
        args.func(args)
    except (UserError, ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        print(f"spiking-gan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiking-gan {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
