"""The report of one trained run: its measures (metrics.json) and every figure of its activity.

:func:`run_report` writes into one folder (``spiking-gan evaluate`` and ``spiking-gan figures``
call it):

=====================  ========================================================================
``metrics.json``       :func:`analysis.evaluate.evaluate_run` (all measures, one dict)
``samples.png``        64 generated samples (the evaluation noise)
``raster.png``         one sample through G then D, simulated by **Brian2** (spike raster)
``membrane.png``       Brian2 ``StateMonitor`` traces of 3 pixels and D's 2 output neurons
``sparsity.png``       spikes per sample per layer, spikes per neuron, silent neurons
``inference_time.png`` histograms of D's decision time (real vs fake) and G's completion time
``spike_times.png``    spike-time histograms per layer (ms)
``training_curves.png`` losses, D verdicts, decision time, spikes... per step and epoch
``energy.csv``         operations and energy per sample, per layer (:mod:`analysis.energy`)
``energy.md``          the same as a table, with the convention and what it leaves out
``energy.png``         operations per layer; energy of G + D against the same-size ANN
=====================  ========================================================================

The distributions in the figures come from the same forward passes as the numbers in
``metrics.json`` (:class:`analysis.evaluate.Activity`).
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import numpy as np

from analysis import energy, plots
from analysis.evaluate import EVAL_SEED, Activity, energy_tables, evaluate_run
from analysis.inspect import inspect_sample
from models.coding import decide, decode_times
from models.spikes import completion_times, last_spike_times
from training.runinfo import atomic_json, atomic_write
from training.trainer import load_gan

#: Files of a run report, in the order they are written, with a one-line description.
REPORT_FILES = {
    "metrics.json": "all measures of the run (analysis.evaluate.evaluate_run)",
    "samples.png": "64 generated samples",
    "sparsity.png": "spikes per sample per layer, spikes per neuron, silent neurons (G and D)",
    "inference_time.png": "histograms of D's decision time (real vs generated) and G's completion time",
    "spike_times.png": "spike-time histograms per layer",
    "training_curves.png": "training curves from metrics.jsonl (per step and per epoch)",
    "energy.csv": "operations and energy per sample, per layer (analysis.energy)",
    "energy.md": "the energy table, with the 45 nm convention and what it leaves out",
    "energy.png": "operations per layer, energy of G + D against the same-size ANN",
    "raster.png": "spike raster of one sample through G then D, simulated by Brian2",
    "membrane.png": "membrane potentials (Brian2 StateMonitor) with threshold and spike",
}


def read_metrics(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The per-step and per-epoch records of a run's ``metrics.jsonl``.

    A line cut short by an interruption (the last one) is skipped.

    Returns
    -------
    (steps, epochs) : lists of dicts; epoch records are those with ``"kind": "epoch"``
    """
    steps, epochs = [], []
    with open(path) as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            (epochs if rec.get("kind") == "epoch" else steps).append(rec)
    return steps, epochs


def layer_names(n_g_hidden: int, n_d_hidden: int) -> tuple[list[str], list[str]]:
    """Names of G's and D's spiking layers (hidden..., output), as in the Brian2 raster."""
    g = [f"hidden {k}" for k in range(1, n_g_hidden + 1)] + ["output (pixels)"]
    d = [f"hidden {k}" for k in range(1, n_d_hidden + 1)] + ["output (real, fake)"]
    return g, d


def plot_activity(act: Activity, out_dir: str, title: str = "") -> dict[str, str]:
    """``samples.png``, ``sparsity.png``, ``inference_time.png`` and ``spike_times.png``.

    Parameters
    ----------
    act : the spike times of G and D on the evaluation set
    out_dir : existing folder
    title : prefix of the figure titles (e.g. the run name)

    Returns
    -------
    dict of file name -> path
    """
    T, dt = act.t_max, act.dt_ms
    g_names, d_names = layer_names(len(act.g) - 1, len(act.d_real) - 1)
    n_fake, n_real = act.g[-1].shape[0], act.real_in.shape[0]
    paths = {k: os.path.join(out_dir, k) for k in ("samples.png", "sparsity.png", "inference_time.png",
                                                    "spike_times.png")}
    images = decode_times(act.g[-1][:64], T).reshape(-1, 28, 28)
    plots.plot_grid(images, paths["samples.png"], title=f"{title}: {len(images)} generated samples".lstrip(": "))
    layers = [("G", n, t) for n, t in zip(g_names, act.g)] + [("D", n, t) for n, t in zip(d_names, act.d_all)]
    plots.plot_sparsity(layers, T, paths["sparsity.png"],
                        title=f"{title}: sparsity over {n_fake} generated samples (G) and {n_real} real + "
                              f"{n_fake} generated images (D)".lstrip(": "))
    td_real = decide(act.d_real[-1], T)[1]
    td_fake = decide(act.d_fake[-1], T)[1]
    fake = act.g[-1]
    on = (fake < T).any(axis=1)
    plots.plot_inference_times(td_real * dt, td_fake * dt, completion_times(fake, T) * dt,
                               last_spike_times(fake[on], T) * dt, T * dt, paths["inference_time.png"],
                               title=f"{title}: inference time (window {T * dt:g} ms)".lstrip(": "),
                               n_black=int((~on).sum()))
    panels = [(f"G {n}", {"generated": t}) for n, t in zip(g_names, act.g)]
    panels += [(f"D {n}", {"real images": a, "generated images": b})
               for n, a, b in zip(d_names, act.d_real, act.d_fake)]
    plots.plot_spike_time_histograms(panels, T, dt, paths["spike_times.png"],
                                     title=f"{title}: spike times per layer".lstrip(": "))
    return paths


def run_report(run_dir: str, out_dir: str, n_samples: int = 1000, seed: int = EVAL_SEED,
               with_quality: bool = True, classifier_cache: str | None = None,
               brian: bool = True, sample: int = 0, target: str = "numpy") -> dict[str, Any]:
    """Evaluate a run and write its measures and all its figures (see module docstring).

    Parameters
    ----------
    run_dir : run folder of ``spiking-gan train``
    out_dir : output folder (created)
    n_samples, seed : evaluation samples and noise seed (:func:`analysis.evaluate.evaluate_run`)
    with_quality : compute the classifier-based quality measures
    classifier_cache : folder of the cached quality classifier (default: the run folder)
    brian : also write the Brian2 raster and membrane traces (:mod:`analysis.inspect`)
    sample : which sample (of the inspection noise, seed 0) Brian2 simulates
    target : Brian2 code-generation target

    Returns
    -------
    dict with ``metrics`` (the dict written to metrics.json) and ``files`` (name -> path)
    """
    metrics, act = evaluate_run(run_dir, n_samples, seed, with_quality, classifier_cache,
                                return_activity=True)
    metrics["eval_seed"] = int(seed)
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.basename(os.path.normpath(run_dir))
    title = f"{name} ({metrics['loss']} loss, epoch {metrics['epoch']})"
    files = {"metrics.json": os.path.join(out_dir, "metrics.json")}
    atomic_json(files["metrics.json"], metrics)
    files.update(plot_activity(act, out_dir, title))
    log = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(log):
        steps, epochs = read_metrics(log)
        if steps or epochs:
            files["training_curves.png"] = os.path.join(out_dir, "training_curves.png")
            plots.plot_training_curves(steps, epochs, files["training_curves.png"], title=f"{title}: training")
    gan, _, _ = load_gan(run_dir)
    files.update(write_energy(gan, act, out_dir, title))
    if brian:
        paths = inspect_sample(gan, sample, out_dir, seed=0, target=target)
        files.update({os.path.basename(p): p for p in paths.values()})
    return {"metrics": metrics, "files": files}


def write_energy(gan, act: Activity, out_dir: str, title: str = "") -> dict[str, str]:
    """``energy.csv``, ``energy.md`` and ``energy.png`` of a GAN's activity (:mod:`analysis.energy`)."""
    rows = energy.table_rows(energy_tables(gan, act))
    paths = {k: os.path.join(out_dir, k) for k in ("energy.csv", "energy.md", "energy.png")}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=energy.CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(paths["energy.csv"], buf.getvalue())
    heading = f"{title}: operations and energy per sample".lstrip(": ")
    atomic_write(paths["energy.md"], energy.markdown(rows, heading))
    plots.plot_energy(rows, paths["energy.png"], title=f"{heading}\n{energy.CONVENTION}")
    return paths


def format_metrics(metrics: dict[str, Any]) -> str:
    """The scalar measures as aligned ``key  value`` lines (for the terminal)."""
    keys = [k for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    width = max(len(k) for k in keys) if keys else 0
    lines = []
    for k in keys:
        v = metrics[k]
        line = f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}"
        origin = plots.DECISION_ORIGINS.get(k.replace("_real", "").replace("_fake", ""))
        lines.append(f"{line}  ({origin})" if origin else line)
    for k, v in metrics.items():
        if isinstance(v, list):
            lines.append(f"{k:<{width}}  " + ", ".join(f"{x:.3g}" for x in v))
    return "\n".join(lines)


def write_epoch_grid(epoch: int, gan, cfg, out_dir: str) -> str:
    """``out_dir/samples/epoch_NNN.png``: ``train.sample_grid`` samples of the GAN after ``epoch``,
    from the same noise every epoch (seed ``[cfg.seed, 7]``); a :data:`training.trainer.EpochCallback`.
    Returns the path ('' when ``train.sample_grid`` is 0)."""
    if not cfg.train.sample_grid:
        return ""
    # G's weight average where the run keeps one (ramp.g_ema), as every sample of a finished run
    images, _ = gan.for_sampling().generate(np.random.default_rng([cfg.seed, 7]), cfg.train.sample_grid)
    path = os.path.join(out_dir, "samples", f"epoch_{epoch:03d}.png")
    plots.plot_samples(images, path, f"epoch {epoch}, {cfg.loss.kind} loss", gan.per_class)
    return path
