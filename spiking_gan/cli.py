"""Command-line interface: ``spiking-gan <command> ...``.

Thin layer over the library: it parses arguments, checks them, calls the
functions of :mod:`models`, :mod:`training` and :mod:`analysis`, and turns
user errors (:class:`models.errors.SpikingGanError`, and the operating system's
:class:`OSError`, which names its file) into one line on stderr, exit status 2.
Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from models.errors import SpikingGanError

#: Largest seed (NumPy and the configs take 32-bit seeds).
MAX_SEED = 2**32 - 1
#: Largest ``inspect --sample`` (the noise of every sample before it is drawn).
MAX_SAMPLE_INDEX = 10_000_000 - 1
#: File types a figure may be written as (matplotlib chooses the format by the suffix).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


class UserError(SpikingGanError):
    """A problem with the command line: reported as one line, exit status 2."""


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("spiking-gan")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


# ------------------------------------------------------------- argument types
def _int_type(lo: int, hi: int | None = None, what: str = "an integer"):
    """An argparse type: an integer in ``lo..hi`` (argparse names the option in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {value}")
        return value
    parse.__name__ = what
    return parse


SEED = _int_type(0, MAX_SEED, "a seed")
COUNT = _int_type(1, None, "a count")
INDEX = _int_type(0, None, "an index")


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _floats(text: str) -> list[float]:
    """An argparse type: comma-separated numbers (``--threshold 100`` or ``100,80``)."""
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers in mV separated by commas "
                                         f"(e.g. 100 or 100,80), got {text!r}") from None


def _check_out_file(path: str, option: str, suffixes=(".npz",)) -> str:
    """Check an output file before anything is written; returns the path to write.

    ``.npz`` outputs get the suffix appended when it is missing (as NumPy does); figures must
    have one of :data:`FIGURE_SUFFIXES`. A missing folder is fine: it is created, with its
    parents, when the outputs are written.
    """
    from training.runinfo import check_out_dir

    if suffixes == (".npz",) and not path.endswith(".npz"):
        path += ".npz"
    if not path.lower().endswith(tuple(suffixes)):
        raise UserError(f"{option} {path}: the file name must end in {', '.join(suffixes)}")
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        check_out_dir(folder, "", option=option)  # can it be created?
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: the folder {folder} is not writable")
    return path


def _ann_references(text: str | None, known: dict) -> dict:
    """The ANN references of ``--ann LABELS`` (comma-separated; None: all of ``known``)."""
    if text is None:
        return dict(known)
    labels = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in labels if v not in known]
    if bad or not labels:
        raise UserError(f"--ann {text}: {bad[0] if bad else text!r} is not an ANN reference; choose "
                        f"from {', '.join(known)} (or --no-ann)")
    return {k: known[k] for k in labels}


def _variant_list(text: str | None) -> list[str] | None:
    from training.losses import VARIANTS

    if not text:
        return None
    variants = [v.strip().upper() for v in text.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise UserError(f"--variants {text}: {bad[0] if bad else text!r} is not an Aggressive TTFS "
                        f"variant; choose from {', '.join(VARIANTS)}")
    return variants


# --------------------------------------------------------------------- simulate
def cmd_simulate(args) -> None:
    from models import kernel
    from models.coding import encode_images
    from models.network import check_weights, fan_in_ranges, init_uniform, parse_layers
    from models.neuron import NeuronParams

    if args.nir:
        return _simulate_nir(args)
    args.backend = args.backend or "numpy"
    if args.target != "numpy" and args.backend != "brian2":
        raise UserError("--target only applies to --backend brian2")
    out = _check_out_file(args.out, "--out")
    if args.raster:
        _check_out_file(args.raster, "--raster", FIGURE_SUFFIXES)
    # separate streams, so that --weights reproduces the inputs of a run with the same seed
    rng_weights, rng = (np.random.default_rng([args.seed, k]) for k in (0, 1))
    if args.weights:
        weights = load_weights(args.weights)
        sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        if args.layers and _parse(parse_layers, "--layers", args.layers) != sizes:
            raise UserError(f"--layers {args.layers} does not match the weights in {args.weights} "
                            f"({','.join(map(str, sizes))})")
    else:
        sizes = _parse(parse_layers, "--layers", args.layers or "784,400,2")
        _check_simulation_size(args, sizes, out)
        weights = init_uniform(rng_weights, sizes, fan_in_ranges(sizes))
    _parse(check_weights, f"--weights {args.weights}", weights, sizes)
    if args.weights:
        _check_simulation_size(args, sizes, out)
    thresholds = list(args.threshold)
    if len(thresholds) == 1:
        thresholds *= len(weights)
    params = _parse(NeuronParams, "--threshold/--t-max/--dt", tuple(thresholds), t_max=args.t_max,
                    dt_ms=args.dt)
    if params.n_layers != len(weights):
        raise UserError(f"--threshold: {params.n_layers} thresholds given for {len(weights)} layers")

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
    _write_simulation(args, out, arrays, t_in, times, params.t_max, params.dt_ms, sizes, args.backend)


def _write_simulation(args, out: str, arrays: dict, t_in, times, t_max: int, dt_ms: float, sizes,
                      backend: str) -> None:
    """``simulate``'s outputs: the .npz of ``arrays`` and ``--raster`` (together or not at all), and
    the summary line."""
    from models.files import npz_bytes, output_group
    from models.spikes import sparsity

    _make_parents(out, args.raster)
    with output_group() as group:  # the .npz and the raster appear together or not at all
        group.write(out, npz_bytes(arrays, compress=True))
        if args.raster:
            from analysis.plots import plot_raster
            names = ["input"] + [f"layer {k}" for k in range(1, len(times))] + ["output"]
            plot_raster([t_in[0]] + [t[0] for t in times], t_max, dt_ms,
                        group.path(args.raster), names=names, title=f"sample 0, {backend} backend")
        written = group.commit()
    spikes = sparsity(times, t_max)["spikes_per_sample"]
    print(f"simulated {len(t_in)} samples through {','.join(map(str, sizes))} with {backend}"
          f"{' (' + args.target + ')' if backend.startswith('brian2') else ''}; "
          f"spikes per sample per layer: {', '.join(f'{s:.1f}' for s in spikes)}; "
          f"wrote {', '.join(written)}")


def _check_simulation_size(args, sizes: list[int], out: str) -> None:
    """``simulate``'s sizes against memory and disk, before anything is drawn or written."""
    from models.brian import simulate_bytes
    from models.kernel import forward_bytes
    from models.resources import check_disk, check_memory, synapse_count

    option = f"--batch {args.batch}" + (f" with --layers {','.join(map(str, sizes))}" if args.layers else "")
    synapses = synapse_count(sizes)
    arrays = 4 * args.batch * sum(sizes) + 4 * synapses  # what the .npz holds
    need = (forward_bytes if args.backend == "numpy" else simulate_bytes)(sizes, args.batch)
    check_memory(need + arrays, option, f"simulating {args.batch} samples with {args.backend}")
    check_disk(arrays, out, option, "the spike times")


def _nir():
    """``models.nirgraph`` (needs the ``nir`` package: the optional extra ``nir``)."""
    try:
        from models import nirgraph
    except ImportError as exc:
        raise UserError(f"this command needs the nir package ({exc}): pip install -e '.[nir]'") from None
    return nirgraph


def _simulate_nir(args) -> None:
    """``simulate --nir FILE``: a NIR graph read into Brian2 equations (models.nirgraph)."""
    from models.coding import encode_images, sample_noise_times
    from models.files import load_npz

    nirgraph = _nir()
    if args.backend == "numpy":
        raise UserError("--nir graphs are simulated by Brian2: use --backend brian2 (or leave --backend out)")
    args.backend = "brian2"
    if args.weights or args.layers:
        raise UserError("--nir FILE holds the network: give no --weights or --layers")
    out = _check_out_file(args.out, "--out")
    if args.raster:
        _check_out_file(args.raster, "--raster", FIGURE_SUFFIXES)
    graph = nirgraph.read_graph(args.nir)
    meta = nirgraph.graph_metadata(graph)
    n_in, layers = nirgraph.read_chain(graph, args.nir)
    _check_simulation_size(args, [n_in] + [layer.w.shape[1] for layer in layers], out)
    T, dt_ms = int(meta.get("t_max_steps", args.t_max)), float(meta.get("dt_ms", args.dt))
    n_data = n_in - np.asarray(meta.get("bias_input_times_steps", []), np.int64).size
    if args.inputs:
        arrays, _ = load_npz(args.inputs, "--inputs file")
        key = next((k for k in ("input_times", "spike_times") if k in arrays), None)
        if key is None:
            raise UserError(f"--inputs {args.inputs}: holds no input_times or spike_times array")
        t_in = np.asarray(arrays[key])[:args.batch]
        if t_in.ndim != 2 or t_in.shape[1] != n_data or not np.issubdtype(t_in.dtype, np.integer):
            raise UserError(f"--inputs {args.inputs}: {key} must be integer steps (n, {n_data}), got {t_in.shape}")
    elif args.digits:
        from training.data import load_digits
        if n_data != 784:
            raise UserError(f"--digits needs 784 input neurons, the graph has {n_data}")
        data = load_digits()
        rng = np.random.default_rng([args.seed, 1])
        t_in = encode_images(data.test_images[rng.choice(len(data.test_images), size=args.batch)], T)
    elif meta.get("role") == "generator":  # G's noise as `spiking-gan sample --seed S --n N` draws it
        t_in = sample_noise_times(np.random.default_rng(args.seed), args.batch, n_data, T)
    else:
        t_in = np.random.default_rng([args.seed, 1]).integers(0, T + 1, size=(args.batch, n_data)).astype(np.int32)
    times = nirgraph.simulate_graph(graph, t_in, dt_ms, T, target=args.target, where=args.nir)
    arrays = {"input_times": t_in, "t_max": np.array(T), "dt_ms": np.array(dt_ms)}
    arrays.update({f"times_{k + 1}": t for k, t in enumerate(times)})
    sizes = [n_in] + [layer.w.shape[1] for layer in layers]
    _write_simulation(args, out, arrays, t_in, times, T, dt_ms, sizes, f"brian2 from {args.nir}")


# ------------------------------------------------------------------------ export
def cmd_export(args) -> None:
    from training.gan import N_PIXELS
    from training.runinfo import check_out_dir, folder_lock, make_out_dir
    from training.trainer import load_gan

    nirgraph = _nir()
    with folder_lock(args.out, "export"):
        action = check_out_dir(args.out, "export", reuse=True)
        gan, cfg, meta = load_gan(args.run)
        graphs = {"generator.nir": nirgraph.network_graph(gan.g, gan.noise_dim, "generator"),
                  "discriminator.nir": nirgraph.network_graph(gan.d, N_PIXELS, "discriminator")}
        make_out_dir(args.out, "export", action)
        for name, graph in graphs.items():
            graph.metadata.update(run=os.path.abspath(args.run), epoch=int(meta["epoch"]))
            nirgraph.write_graph(os.path.join(args.out, name), graph)
    print(f"wrote {', '.join(graphs)} ({cfg.neuron.model} model, epoch {meta['epoch']}, "
          f"dt {cfg.neuron.dt_ms:g} ms, window {cfg.neuron.t_max} steps) to {args.out}")


def _parse(check, option: str, *args, **kwargs):
    """``check(*args, **kwargs)``, its ValueError reported as a user error naming ``option``."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _make_parents(*paths: str | None) -> None:
    for path in paths:
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def load_weights(path: str) -> list[np.ndarray]:
    """``weights_0 .. weights_L`` of an ``.npz`` (e.g. an earlier ``simulate --out``).

    Raises
    ------
    models.files.FileFormatError
        Not an ``.npz``, a gap in the numbering, arrays that are not 2-D real numbers,
        NaN/inf; the message names the file.
    """
    from models.files import load_npz, numbered_arrays, numeric_array

    where = f"--weights {path}"
    arrays, _ = load_npz(path, "--weights file")
    return [numeric_array(arrays, k, where, ndim=(2,)) for k in numbered_arrays(arrays, "weights_", where)]


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
                      ("dataset", "data.dataset"), ("data_dir", "data.data_dir"), ("threads", "train.threads")):
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
    from experiments.report import write_epoch_grid
    from training.config import GanConfig
    from training.trainer import train_gan

    if args.resume and args.force:
        raise UserError("--resume continues the run in --out, --force replaces it: give one of them")
    if args.resume and not args.config:  # the run's recorded config, maybe extended
        summary = train_gan(None, args.out, resume=True, progress=not args.quiet,
                            overrides=_overrides(args), on_epoch=write_epoch_grid)
    else:  # without --config: the defaults, i.e. the main job (configs/quick_single.toml)
        summary = train_gan(_load_config(args, GanConfig), args.out, resume=args.resume,
                            progress=not args.quiet, force=args.force, on_epoch=write_epoch_grid)
    print(f"run {args.out}: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()
                                          if isinstance(v, (int, float))))


# ----------------------------------------------------------------------- sample
#: Bytes per sample of ``sample``'s file, uncompressed: images (float32) and spike times (int32).
SAMPLE_BYTES = 784 * (4 + 4)


def cmd_sample(args) -> None:
    from tqdm import tqdm

    from models.files import output_group, write_npz_stream
    from models.resources import check_disk
    from training.trainer import load_gan

    out = _check_out_file(args.out, "--out")
    if args.grid:
        _check_out_file(args.grid, "--grid", FIGURE_SUFFIXES)
    # the samples stream into the file batch by batch: memory is one batch; the disk must hold
    # the file and, until it is complete, a spooled copy of its images
    check_disk(2 * args.n * SAMPLE_BYTES, out, f"--n {args.n}", f"{args.n} samples")
    gan, cfg, meta = load_gan(args.run)
    n_grid = min(args.n, 100 if gan.per_class else 64)
    grid = np.empty((n_grid, 28, 28), np.float32)

    def batches():
        s = 0
        for images, times in tqdm(gan.generate_batches(np.random.default_rng(args.seed), args.n),
                                  total=-(-args.n // 500), unit="batch", disable=args.n <= 10_000, leave=False):
            if s < n_grid:
                grid[s:s + len(images)] = images[:n_grid - s]
            s += len(images)
            yield times, images

    extra = {"labels": gan.default_labels(args.n)} if gan.per_class else {}
    _make_parents(out, args.grid)
    with output_group() as group:  # the .npz and the grid appear together or not at all
        write_npz_stream(group.path(out), {"spike_times": ((args.n, 784), np.int32),
                                           "images": ((args.n, 28, 28), np.float32)}, batches(),
                         dict(t_max=np.array(cfg.neuron.t_max), epoch=np.array(meta["epoch"]), **extra))
        if args.grid:
            from analysis.plots import plot_samples
            plot_samples(grid, group.path(args.grid),
                         f"{os.path.basename(os.path.normpath(args.run))}, epoch {meta['epoch']}", gan.per_class)
        group.commit()
    print(f"wrote {args.n} samples of {args.run} (epoch {meta['epoch']}) to {out}")
    if args.grid:
        print(f"wrote {args.grid}")


# --------------------------------------------------------------------- classify
def cmd_classify(args) -> None:
    from training.classifier import run_classifier
    from training.config import ClassifierConfig

    result = run_classifier(_load_config(args, ClassifierConfig), args.out, force=args.force,
                            progress=not args.quiet)
    print(f"test accuracy {result['test_accuracy']:.4f}, decision time {result['decision_time_ms']:.1f} ms, "
          f"{result['spikes_per_image']:.1f} spikes per image -> {os.path.join(args.out, 'metrics.json')}")


def cmd_inspect(args) -> None:
    from training.runinfo import folder_lock

    out = args.out or os.path.join(args.run, "inspect")
    with folder_lock(out, "inspect"):
        _inspect(args, out)


def _inspect(args, out: str) -> None:
    from analysis.inspect import inspect_sample
    from models.resources import check_count
    from training.gan import N_PIXELS
    from training.runinfo import check_out_dir, make_out_dir
    from training.trainer import load_gan

    neurons = None
    if args.neurons:
        try:
            neurons = [int(x) for x in args.neurons.split(",")]
        except ValueError:
            raise UserError(f"--neurons expects comma-separated pixel indices, got {args.neurons!r}") from None
    check_count(args.sample, MAX_SAMPLE_INDEX, "--sample", "inspect draws the noise of samples 0, 1, ... "
                "up to it in order (as `sample --n` does), and more than 10 million draws take minutes")
    action = check_out_dir(out, "inspect", reuse=True)
    gan, cfg, meta = load_gan(args.run)
    n_pixels = N_PIXELS  # G's output neurons
    if neurons is not None and not all(0 <= n < n_pixels for n in neurons):
        raise UserError(f"--neurons must be G output (pixel) indices in 0..{n_pixels - 1}, got {args.neurons}")
    make_out_dir(out, "inspect", action)
    paths = inspect_sample(gan, args.sample, out, neurons, seed=args.seed, target=args.target)
    print(f"sample {args.sample} of {args.run} (epoch {meta['epoch']}) through Brian2: "
          + ", ".join(paths.values()))


# ------------------------------------------------------------------------ sweep
def cmd_sweep(args) -> None:
    from experiments.sweep import check_scheduler, load_sweep, point_label
    from training.runinfo import check_out_dir, folder_lock, make_out_dir

    if args.scheduler and args.workers is not None:
        raise UserError("--workers sets the size of the local cluster; with --scheduler the "
                        "scheduler's workers run the points")
    sweep = load_sweep(args.sweep)
    if args.scheduler and not args.dry_run:
        check_scheduler(args.scheduler, args.connect_timeout)
    dropped = f" ({sweep.duplicates} repeated draws dropped)" if sweep.duplicates else ""
    if args.dry_run:
        print(f"{args.sweep}: {len(sweep.points)} valid points{dropped}")
        for p in sweep.points:
            print(f"  {p.id}: {point_label(p.overrides)}")
        return
    with folder_lock(args.out, "sweep"):
        make_out_dir(args.out, "sweep", check_out_dir(args.out, "sweep", reuse=True))
        _run_sweep(args, sweep, dropped)


def _run_sweep(args, sweep, dropped: str) -> None:
    from experiments.sweep import run_sweep

    if not args.quiet:
        where = args.scheduler or f"a local cluster of {args.workers or 2} workers"
        print(f"sweep {args.sweep}: {len(sweep.points)} points{dropped} on {where} -> {args.out}",
              flush=True)
    outcome = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers or 2,
                        retries=args.retries, progress=not args.quiet, connect_timeout=args.connect_timeout)
    print(f"{len(sweep.points)} points: {outcome.ran} run, {outcome.skipped} skipped (done before), "
          f"{outcome.failed} failed, in {outcome.seconds:.1f} s; summary: {outcome.report['csv']}, "
          f"{outcome.report['md']}")
    if outcome.failed:
        failed = [r for r in outcome.results if r["status"] == "failed"]
        raise SpikingGanError(f"{outcome.failed} point(s) failed, e.g. {failed[0]['point']}: "
                           f"{failed[0]['error'].splitlines()[0]} (all errors in {outcome.report['md']})")


# --------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> None:
    from analysis.evaluate import check_evaluation_size
    from experiments.report import format_metrics, run_report
    from training.runinfo import check_out_dir, folder_lock, make_out_dir
    from training.trainer import load_gan

    out = args.out or os.path.join(args.run, "evaluation")
    with folder_lock(out, "evaluate"):
        action = check_out_dir(out, "evaluate", reuse=True)
        _, cfg, _ = load_gan(args.run)  # the run's config and checkpoint are checked before anything is written
        check_evaluation_size(cfg, args.n)
        make_out_dir(out, "evaluate", action)
        rep = run_report(args.run, out, n_samples=args.n, with_quality=not args.no_quality,
                         brian=not args.no_brian, target=args.target)
    print(format_metrics(rep["metrics"]))
    print(f"wrote {', '.join(sorted(os.path.basename(p) for p in rep['files'].values()))} to {out}")


# --------------------------------------------------------------- compare-losses
def cmd_compare_losses(args) -> None:
    import dataclasses
    import time

    from experiments.compare import compare_losses
    from training.config import ANN_REFERENCES, GanConfig

    variants = _variant_list(args.variants)
    cfg = _load_config(args, GanConfig)
    refs = _ann_references(args.ann, ANN_REFERENCES)
    if args.ann_epochs is not None:  # the references trained to convergence, not the untuned one
        refs = {k: dataclasses.replace(v, epochs=args.ann_epochs) if k != "ann" else v for k, v in refs.items()}
    res = compare_losses(cfg, args.out, _n_seeds(args), variants=variants, n_samples=args.n,
                         ann=not args.no_ann, progress=not args.quiet, workers=args.workers,
                         ann_references=refs,
                         header=f"Produced by `spiking-gan {' '.join(args.argv)}` on "
                                f"{time.strftime('%Y-%m-%d %H:%M %Z')}.")
    with open(res["files"]["loss_comparison.md"]) as fh:
        print(fh.read())
    print("wrote " + ", ".join(res["files"].values()))


# ---------------------------------------------------------------------- figures
def cmd_figures(args) -> None:
    from experiments.figures import make_figures
    from training.runinfo import tracked_files

    variants = _variant_list(args.variants)
    committed = tracked_files(args.out)
    if committed and not args.quiet:
        print(f"spiking-gan figures: {args.out} holds {len(committed)} files committed to git; those this "
              f"run writes are replaced (`git diff --stat {args.out}` shows what changed)", file=sys.stderr)
    make_figures(args.out, full=args.full, n_seeds=_n_seeds(args), runs_dir=args.runs_dir,
                 config_path=args.config, overrides=_overrides(args), n_samples=args.n,
                 variants=variants, brian=not args.no_brian, progress=not args.quiet,
                 command="spiking-gan " + " ".join(args.argv))


def _n_seeds(args) -> int:
    if args.seeds_deprecated is not None:
        if args.n_seeds is not None:
            raise UserError("give --n-seeds only (--seeds is its old name)")
        print("spiking-gan: --seeds N is now --n-seeds N (the number of seeds; --seed is the first seed)",
              file=sys.stderr)
        return args.seeds_deprecated
    return 3 if args.n_seeds is None else args.n_seeds


def _add_comparison_args(p):
    p.add_argument("--n-seeds", type=COUNT, metavar="N",
                   help="seeds per loss: the config's seed, +1, ..., N in all (default: 3)")
    p.add_argument("--seeds", type=COUNT, dest="seeds_deprecated", metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--variants", help="Aggressive TTFS variants as their own groups, e.g. A,B,C "
                   "(default: the config's loss.variant)")
    p.add_argument("--n", type=_int_type(2, None, "a count"), default=1000,
                   help="generated samples per evaluation")


def _add_target_arg(p, help: str) -> None:
    from models.brian import TARGETS  # brian2 itself is imported only when a simulation runs
    p.add_argument("--target", choices=TARGETS, default="numpy", help=help)


def _add_config_args(p, loss=True):
    p.add_argument("--config", help="TOML config file (see configs/); default: the shipped recipe "
                   "(train, compare-losses: configs/quick_single.toml; classify: configs/classify.toml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set loss.gamma=5 (repeatable)")
    p.add_argument("--seed", type=SEED, help="override the config's seed")
    p.add_argument("--epochs", type=COUNT, help="override train.epochs")
    if loss:
        p.add_argument("--loss", choices=["ttfs", "aggressive"], help="override loss.kind")
    p.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"],
                   help="override data.dataset: the embedded digits (the configs' default) or a "
                   "full data set read from its IDX files")
    p.add_argument("--data-dir", help="override data.data_dir: the folder of the IDX files (default: "
                   "the Debian package's for fashion-mnist), or a torchvision root holding them")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_threads_arg(p) -> None:
    p.add_argument("--threads", type=COUNT, help="override train.threads: BLAS threads of training (default 1: "
                   "the same results on every machine; N > 1 is faster on idle cores and repeats its results "
                   "for the same N on the same machine only)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for options that have a default value (not for None or flags)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# ------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spiking-gan", formatter_class=_HelpFormatter,
        description="Spiking-GAN (Kotariya & Ganguly 2021): a GAN whose generator and discriminator are "
                    "spiking networks of integrate-and-fire neurons that spike at most once, coding "
                    "intensity by time to first spike. Train one on the embedded MNIST digits, sample it, "
                    "evaluate and inspect it in Brian2, compare the TTFS and Aggressive TTFS losses, and "
                    "sweep parameters on Dask.",
        epilog="Start with `spiking-gan train --out runs/quick` (the main job), then `spiking-gan COMMAND "
               "--help` for each command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help, description, func):
        p = sub.add_parser(name, help=help, description=description, formatter_class=_HelpFormatter)
        p.set_defaults(func=func)
        return p

    p = command("simulate", "run a TTFS network on random inputs or digits",
                "Run a layered TTFS network of IF neurons (random S4NN-style weights, or --weights) on "
                "random input spike times or on the embedded MNIST digits, with the NumPy kernel or "
                "Brian2, and save all spike times.", cmd_simulate)
    p.add_argument("--layers", help="layer sizes, e.g. 784,400,2 (default: 784,400,2, or the sizes of --weights)")
    p.add_argument("--weights", help="load weights_0..weights_L from an .npz (e.g. an earlier --out)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the weights and the inputs")
    p.add_argument("--batch", type=COUNT, default=32, help="number of samples")
    p.add_argument("--backend", choices=["numpy", "brian2"],
                   help="simulator: the NumPy kernel (fast, used for training; the default) or Brian2 (the "
                   "reference model; the only one for --nir)")
    _add_target_arg(p, "Brian2 code generation target (with --backend brian2)")
    p.add_argument("--digits", action="store_true", help="use the embedded MNIST digits as inputs")
    p.add_argument("--threshold", type=_floats, default=[100.0], metavar="MV[,MV...]",
                   help="threshold in mV, one for all layers or one per layer (default: 100)")
    p.add_argument("--t-max", type=_int_type(2, None, "a number of steps"), default=256,
                   help="window in steps")
    p.add_argument("--dt", type=float, default=1.0, help="step in ms")
    p.add_argument("--out", required=True, help="output .npz (the suffix is added if missing): input_times, "
                   "weights_k, times_k, thresholds, t_max, dt_ms (no spike = t_max)")
    p.add_argument("--raster", help="write a spike raster PNG of sample 0 across all layers")
    p.add_argument("--nir", metavar="FILE", help="simulate this NIR graph (e.g. from `spiking-gan export`) in "
                   "Brian2: Affine/Linear, Delay, I, IF and LIF nodes in a chain; its metadata sets dt and the window")
    p.add_argument("--inputs", metavar="NPZ", help="with --nir: input spike times, the array input_times or "
                   "spike_times of an .npz (e.g. `spiking-gan sample --out`) (default: a generator graph gets "
                   "the noise `sample --seed` draws, others random times or --digits)")

    p = command("export", "a trained run's G and D as NIR graphs",
                "Write the generator and discriminator of a run (its last checkpoint) as NIR graphs, "
                "OUT/generator.nir and OUT/discriminator.nir, with their trained weights and thresholds; "
                "the time step, the window and what NIR cannot say (at most one spike, the ramp "
                "model's window) are in each graph's metadata.", cmd_export)
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--out", required=True, help="output folder (created with its parents)")

    p = command("train", "train a Spiking-GAN",
                "Train a Spiking-GAN into a run folder (config.toml, run.json, checkpoint.npz every "
                "epoch, metrics.jsonl, samples/*.png). Without --config: the main job, one pair of "
                "windowed ramp neurons with exact gradients, G convolutional and sampled from its "
                "weight average (configs/quick_single.toml); configs/dense_single.toml is the dense "
                "pair; "
                "configs/s4nn_single.toml is the paper's IF neurons with S4NN's rule. An existing run "
                "is continued with --resume or replaced with --force.", cmd_train)
    _add_config_args(p)
    p.add_argument("--out", required=True, help="run folder, e.g. runs/quick")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last "
                   "checkpoint (--epochs N extends it)")
    p.add_argument("--force", action="store_true", help="replace the train run in --out")
    _add_threads_arg(p)

    p = command("sample", "generate samples from a trained run",
                "Generate samples with the generator of a trained run (its last checkpoint) and save "
                "images and spike times as .npz, and optionally a PNG grid.", cmd_sample)
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--n", type=COUNT, default=1000, help="number of samples")
    p.add_argument("--seed", type=SEED, default=0, help="noise seed")
    p.add_argument("--out", required=True, help=".npz with images (n, 28, 28) in [0, 1] and spike_times (n, 784)")
    p.add_argument("--grid", help="PNG grid of the first 64 samples (per-class GAN: 100, one class per column)")

    p = command("classify", "S4NN sanity check: train a spiking classifier on the digits",
                "Train a 784-400-10 spiking classifier with the same learning rule; writes "
                "DIR/metrics.json (test_accuracy, decision_time_ms, spikes_per_image), weights.npz, "
                "metrics.jsonl, config.toml and run.json.", cmd_classify)
    _add_config_args(p)
    p.add_argument("--out", required=True, help="run folder (created with its parents)")
    p.add_argument("--force", action="store_true", help="replace the classify run in --out")

    p = command("inspect", "one sample through a trained run in Brian2: raster + membrane traces",
                "Simulate one generated sample through G, then D, in Brian2, and draw the spike raster "
                "of every layer (raster.png) and the membrane potentials of chosen G output neurons "
                "and of D's outputs (membrane.png).", cmd_inspect)
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--sample", type=INDEX, default=0, help="which noise sample (0, 1, ...)")
    p.add_argument("--seed", type=SEED, default=0, help="noise seed")
    p.add_argument("--neurons", help="G output neurons (pixel indices) to trace, e.g. 350,400 "
                   "(default: earliest, median and latest pixel)")
    _add_target_arg(p, "Brian2 code generation target")
    p.add_argument("--out", help="output folder (default: RUN/inspect)")

    p = command("evaluate", "all measures of a trained run, and its figures",
                "Evaluate a run (analysis/evaluate.py: D decision time, G completion, spikes, silent "
                "neurons, classifier-FID, KID, coverage; analysis/energy.py: operations and energy per "
                "sample) and draw its figures (samples, sparsity, inference-time and spike-time "
                "histograms, training curves, energy, Brian2 raster and membrane traces). Writes "
                "OUT/metrics.json, OUT/energy.csv, OUT/energy.md and OUT/*.png.", cmd_evaluate)
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--n", type=_int_type(2, None, "a count"), default=1000,
                   help="generated samples (and real test images)")
    p.add_argument("--out", help="output folder (default: RUN/evaluation)")
    p.add_argument("--no-quality", action="store_true", help="skip the classifier-based quality measures")
    p.add_argument("--no-brian", action="store_true", help="skip the Brian2 raster and membrane traces")
    _add_target_arg(p, "Brian2 code generation target of the raster")

    p = command("compare-losses", "TTFS vs Aggressive TTFS on the same seeds and budget",
                "Train the GAN with loss.kind=ttfs and loss.kind=aggressive on the same seeds (runs in "
                "OUT/runs/{loss}_seed{s}; finished runs are reused, interrupted ones resumed), evaluate "
                "each, train the non-spiking ANN GANs as quality references (ann, untuned: the "
                "spiking pair's epochs, plain Adam; ann_tuned: training.config.ANN_TUNED; ann_conv: a "
                "small DCGAN, training.config.ANN_CONV), and write "
                "OUT/loss_comparison.{csv,md,png}, OUT/ann_reference.csv and OUT/quality_grids.png. "
                "--seed is the first seed, --n-seeds how many.",
                cmd_compare_losses)
    _add_config_args(p, loss=False)
    p.add_argument("--out", required=True, help="output folder")
    _add_comparison_args(p)
    p.add_argument("--no-ann", action="store_true", help="skip the non-spiking ANN GAN references")
    p.add_argument("--ann", metavar="LABELS",
                   help="the ANN references to train, comma-separated (default: ann,ann_tuned,ann_conv)")
    p.add_argument("--ann-epochs", type=COUNT, metavar="N",
                   help="epochs of the tuned ANN references, ann_tuned and ann_conv (default: "
                        "training.config.ANN_TUNED's and ANN_CONV's)")
    p.add_argument("--workers", type=COUNT, default=1,
                   help="train this many runs at once, in separate processes (same results)")
    _add_threads_arg(p)

    p = command("figures", "the loss study of one config: comparison, grids, run reports",
                "Train (or reuse) the runs of one config with both D losses and write their figures and "
                "tables to OUT: the loss comparison (CSV, MD, PNG) with the ANN GAN reference, sample "
                "grids, and the run report of one run per loss (Brian2 raster, membrane traces, sparsity, "
                "inference-time and spike-time histograms, training curves), plus OUT/README.md. By "
                "default the paper's IF neurons with S4NN's rule (configs/s4nn_single.toml); the other "
                "committed figures come from the Makefile's targets (make single-pair, losses, "
                "per-class, controls). Resumable.", cmd_figures)
    p.add_argument("--out", required=True, help="output folder, e.g. figures/")
    p.add_argument("--full", action="store_true", help="configs/mnist.toml instead of configs/s4nn_single.toml (hours)")
    p.add_argument("--runs-dir", help="folder of the runs (default: runs/figures, with --full runs/figures-full)")
    _add_comparison_args(p)
    p.add_argument("--no-brian", action="store_true", help="skip the Brian2 rasters and membrane traces")
    p.add_argument("--config", help="(advanced) this config instead of s4nn_single.toml / mnist.toml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="(advanced) override a config value")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = command("sweep", "a parameter sweep (grid or random) on Dask",
                "Train and evaluate one GAN per point of a sweep file (TOML, see sweeps/) on a Dask "
                "LocalCluster or a running scheduler; re-running skips finished points. Writes "
                "OUT/points/<id>/, OUT/summary.csv, OUT/summary.md, OUT/plots/*.png.", cmd_sweep)
    p.add_argument("sweep", help="sweep file, e.g. sweeps/tiny.toml")
    p.add_argument("--out", required=True, help="output folder, e.g. sweeps_out/tiny")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                   "(default: a LocalCluster on this machine)")
    p.add_argument("--connect-timeout", type=_positive_float, default=5.0, metavar="S",
                   help="seconds to wait for --scheduler to answer")
    p.add_argument("--workers", type=COUNT, help="worker processes of the LocalCluster (default: 2)")
    p.add_argument("--retries", type=_int_type(0, None, "a count"), help="extra attempts of a failing "
                   "point (default: the sweep file's retries, else 1)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the points, run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _interrupted(args) -> str:
    """What the interrupt message says: how to continue."""
    if args.command == "train":
        return (f"interrupted; the last finished epoch is saved: continue with "
                f"`spiking-gan train --out {args.out} --resume`")
    if args.command in ("compare-losses", "figures", "sweep"):
        return "interrupted; run the same command again to continue (finished runs are reused, " \
               "interrupted ones resumed)"
    if args.command == "classify":
        return f"interrupted; {args.out} holds an unfinished run: replace it with --force"
    if args.command in ("evaluate", "inspect"):
        return "interrupted; run the same command again to redraw"
    return "interrupted; nothing was written"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2), or --help / --version (0)
        return int(exc.code or 0)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        args.func(args)
    except (SpikingGanError, OSError) as exc:
        print(f"spiking-gan {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiking-gan {args.command}: {_interrupted(args)}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
