"""``spiking-gan figures``: every figure and table of the study, from runs it trains or finds.

:func:`make_figures` writes into ``out_dir``:

``loss_comparison.csv`` / ``.md`` / ``.png``, ``ann_reference.csv``
    the loss comparison (:func:`experiments.compare.compare_losses`: TTFS vs Aggressive TTFS on
    the same seeds, with the non-spiking ANN GAN as the quality reference).
``samples.png``
    64 real test digits, 64 samples of the ANN GAN and 64 of each loss (first seed), side by side.
``{loss}/...``
    the run report (:func:`experiments.report.run_report`) of the first seed of each loss:
    metrics.json, samples, Brian2 raster and membrane traces, sparsity, inference-time and
    spike-time histograms, training curves.
``README.md``
    every file with what it shows, the exact command and the date it was produced.

It is resumable: runs are trained into ``runs_dir`` once (finished runs are reused,
interrupted ones resumed), evaluations and ANN GANs are cached there; re-running only redraws.
Quick mode (``configs/s4nn_single.toml``, the paper's rule) is the default, ``full`` uses ``configs/mnist.toml``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from analysis import plots
from analysis.evaluate import EVAL_SEED
from experiments.compare import compare_losses, sample_panels
from experiments.report import REPORT_FILES, run_report
from training import config as config_mod
from training.config import GanConfig
from training.data import load_dataset
from training.runinfo import atomic_write, git_commit, holds_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Config of each mode.
MODE_CONFIGS = {"quick": os.path.join(ROOT, "configs", "s4nn_single.toml"),
                "full": os.path.join(ROOT, "configs", "mnist.toml")}


def _index(out_dir: str, files: dict[str, str], command: str, when: str, runs: Sequence[str],
           config_path: str) -> str:
    lines = ["# Figures and tables of the study", "",
             f"Produced by `{command}` on {when} (git commit {git_commit().get('commit', 'unknown')}), "
             f"config `{display_path(config_path)}`. "
             "Re-running the command reuses the finished runs and redraws everything; delete the runs "
             "folder to retrain.", "",
             "| file | what it shows | produced |", "|---|---|---|"]
    for path, desc in files.items():
        rel = os.path.relpath(path, out_dir)
        lines.append(f"| [`{rel}`]({rel}) | {desc} | {when} |")
    lines += ["", "Runs used (folder, started, git commit of the training):", ""]
    for run in runs:
        rec = _read_json(os.path.join(run, "run.json"))
        git = rec.get("git") or {}
        lines.append(f"- `{run}`: started {rec.get('started', '?')}, commit {git.get('commit', '?')}"
                     + (" (uncommitted changes)" if git.get("dirty") else ""))
    return "\n".join(lines) + "\n"


def display_path(path: str) -> str:
    """``path`` relative to the repository if it lies inside it, else as given."""
    full = os.path.abspath(path)
    return os.path.relpath(full, ROOT) if full.startswith(ROOT + os.sep) else path


def _read_json(path: str) -> dict[str, Any]:
    import json
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


@holds_folder("figures")
def make_figures(out_dir: str, full: bool = False, n_seeds: int = 3, runs_dir: str | None = None,
                 config_path: str | None = None, overrides: dict[str, Any] | None = None,
                 n_samples: int = 1000, variants: Sequence[str] | None = None, brian: bool = True,
                 progress: bool = True, command: str = "spiking-gan figures") -> dict[str, str]:
    """Train or reuse the runs of the study and write all its figures and tables.

    Parameters
    ----------
    out_dir : folder of the figures (created with its parents; an existing one must hold an
        earlier output of ``spiking-gan figures``)
    full : use ``configs/mnist.toml`` (hours) instead of ``configs/s4nn_single.toml`` (minutes)
    n_seeds : seeds per loss
    runs_dir : folder of the runs, evaluations and ANN GANs (default ``runs/figures``, or
        ``runs/figures-full`` with ``full``)
    config_path : (advanced) another config instead of the mode's
    overrides : dotted config overrides (``--set``)
    n_samples : generated samples per evaluation
    variants : Aggressive TTFS variants as their own groups (default: the config's)
    brian : draw the Brian2 rasters and membrane traces
    progress : progress lines
    command : the command line, recorded in README.md

    Returns
    -------
    dict of written file -> description
    """
    t0 = time.perf_counter()
    config_path = config_path or MODE_CONFIGS["full" if full else "quick"]
    cfg = config_mod.load(config_path, GanConfig, overrides or {})
    runs_dir = runs_dir or os.path.join("runs", "figures-full" if full else "figures")
    # compare_losses checks every input, then creates out_dir and runs_dir (as figures' folders)
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    header = (f"Produced by `{command}` on {when}; config `{display_path(config_path)}`"
              + (f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else "")
              + f"; {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, t_max {cfg.neuron.t_max} steps "
              f"of {cfg.neuron.dt_ms:g} ms; G {cfg.generator.noise_dim}-{'-'.join(map(str, cfg.generator.hidden))}"
              f"-784, D 784-{'-'.join(map(str, cfg.discriminator.hidden))}-2; Aggressive TTFS variant "
              f"{cfg.loss.variant}, alpha {cfg.loss.alpha:g} steps. Evaluation: {n_samples} generated samples "
              f"(noise seed {EVAL_SEED}) and up to {n_samples} real test digits.")
    res = compare_losses(cfg, out_dir, n_seeds, runs_dir=runs_dir, variants=variants, n_samples=n_samples,
                         ann=True, cache_dir=runs_dir, progress=progress, header=header, command="figures")
    files: dict[str, str] = {
        res["files"]["loss_comparison.md"]: "the loss comparison table: mean +- std per loss, relative "
                                            "changes, the paper's claim, the ANN GAN reference",
        res["files"]["loss_comparison.csv"]: "one row per (loss, seed): every measure",
        res["files"]["loss_comparison.png"]: "decision time, spikes and classifier-FID per seed and mean +- std",
        res["files"]["ann_reference.csv"]: "the non-spiking ANN GANs' (untuned, tuned) sample quality per seed",
    }
    if progress:
        print("drawing the sample grids", flush=True)
    data = load_dataset(cfg.data)
    samples = os.path.join(out_dir, "samples.png")
    plots.plot_grids(sample_panels(res, data), samples,
                     title=f"samples (first seed, noise seed {EVAL_SEED}); measures against the real test digits")
    files[samples] = ("real digits, Spiking-GAN samples of each loss and the ANN references' samples, side "
                      "by side (as compare-losses' quality_grids.png)")
    for label, dirs in res["runs"].items():
        if progress:
            print(f"run report of {dirs[0]} -> {os.path.join(out_dir, label)}", flush=True)
        rep = run_report(dirs[0], os.path.join(out_dir, label), n_samples, classifier_cache=runs_dir,
                         brian=brian)
        for name, path in rep["files"].items():
            files[path] = f"{label} loss, seed {res['seeds'][0]}: {REPORT_FILES[name]}"
    index = os.path.join(out_dir, "README.md")
    files[index] = "this index"
    runs = [d for dirs in res["runs"].values() for d in dirs]
    atomic_write(index, _index(out_dir, files, command, when, runs, config_path))
    if progress:
        print(f"wrote {len(files)} files to {out_dir} in {time.perf_counter() - t0:.0f} s", flush=True)
    return files
