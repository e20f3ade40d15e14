"""The paper's headline experiment: S4NN's TTFS loss vs Aggressive TTFS, same seeds and budget.

:func:`compare_losses` trains (or reuses, or resumes) one run per (loss, seed), evaluates each
with :func:`analysis.evaluate.evaluate_run` (one cached quality classifier shared by all),
trains the same-size non-spiking reference GAN (:mod:`analysis.ann_gan`) on the same digits,
and writes

``loss_comparison.csv``
    one row per (loss, seed): :data:`COLUMNS`.
``loss_comparison.md``
    mean +- std per loss, the relative change of every Aggressive group against ``ttfs``
    (of the means, and paired over seeds), the ANN GAN's quality as the reference point, and
    a plain sentence on whether the paper's numbers (inference > 33 % faster, > 11 % fewer
    spikes) are reached.
``loss_comparison.png``
    per-seed points and mean +- std of decision time, spikes and classifier-FID.
``ann_reference.csv``
    the ANN GAN's quality per seed.

The runs live in ``RUNS/{loss}_seed{seed}``. A finished run (``summary.json``, or a
checkpoint at the last epoch) is reused, an interrupted one resumed from its checkpoint, and a
run folder trained with another config is an error (delete it or choose another folder).
Evaluations are cached in ``RUN/evaluation.json`` (keyed by the checkpoint's SHA-256 and the
evaluation settings), the ANN GANs in ``RUNS/ann/``.

The ANN GAN's budget ("same budget")
------------------------------------
Same layer sizes (G: noise -> the spiking G's hidden sizes -> 784; D: 784 -> the spiking D's
hidden sizes -> 1 logit instead of 2 output neurons), same training digits, same batch size
and the **same number of epochs, i.e. passes over the training digits**. Not the same wall
clock: the time per pass measures the implementation (dense float32 BLAS products against
an event-driven spiking simulation in NumPy) and the load of the machine, not the models,
and it is not reproducible; epochs are how GAN training budgets are usually stated and make
the reference deterministic. Both wall clocks are reported (``train_seconds``), so a reader
can see the difference. With ``train.d_steps = k`` the spiking GAN makes ``1/k`` as many G
updates per epoch as the ANN GAN (which alternates one D and one G step per batch).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis import energy, plots
from analysis.ann_gan import layout, load_ann_gan, save_ann_gan, train_ann_gan
from analysis.evaluate import EVAL_SEED, check_evaluation_size, classifier_for, evaluate_run
from analysis.plots import DECISION_ORIGINS
from analysis.quality import evaluate_samples
from analysis.stats import mean_std
from experiments.report import read_metrics, write_epoch_grid
from training import config as config_mod
from training.config import ANN_REFERENCES, ANN_UNTUNED, DENSE_RECIPE, AnnGanConfig, GanConfig, config_diff
from training.data import load_dataset
from training.losses import VARIANTS
from training.runinfo import atomic_json, atomic_write, check_out_dir, holds_folder, make_out_dir, run_record
from training.trainer import RunError, load_gan, train_gan

#: Bumped whenever a measure's definition changes, so that cached evaluations are redone
#: (2: D spikes up to the decision count the ramp model's earlier windows; 3: energy measures;
#: 4: readable, nearest_real, isolated and the real digits' values).
MEASURES_VERSION = 4
#: Measures of a run copied from :func:`analysis.evaluate.evaluate_run` into each CSV row.
MEASURES = [
    "decision_time_ms", "decision_time_real_ms", "decision_time_fake_ms", "no_decision_rate",
    "spikes_total", "spikes_g", "spikes_d", "spikes_d_to_decision",
    "classifier_fid", "kid", "class_coverage", "mean_confidence", "inception_score",
    "within_class_diversity", "speckle", "readable", "nearest_real", "isolated",
    "readable_real", "isolated_real", "speckle_real",
    "decision_latency_ms", "d_accuracy_real", "d_accuracy_fake", "d_tie_rate",
    "g_completion_ms", "g_last_spike_ms", "g_pixels_on",
    "acs_g", "acs_d_to_decision", "clock_updates_d_to_decision", "event_updates_d_to_decision",
    "energy_total_pj", "energy_d_to_decision_pj", "ann_energy_total_pj", "energy_ratio_snn_ann",
]
#: The measures that need the quality classifier.
QUALITY_MEASURES = ("classifier_fid", "kid", "class_coverage", "mean_confidence", "inception_score",
                    "within_class_diversity", "speckle", "readable", "nearest_real", "isolated",
                    "readable_real", "isolated_real", "speckle_real")
#: The measures with a value of the real test digits: measure -> the key holding it (None: 1 by definition).
REAL_VALUES = {"readable": "readable_real", "nearest_real": None, "isolated": "isolated_real",
               "speckle": "speckle_real"}
#: Columns of ``loss_comparison.csv``.
COLUMNS = ["loss", "seed", "dataset", "kind", "variant", "alpha", "epochs", *MEASURES, "train_seconds", "run"]
#: Training settings of an ANN reference recorded in its rows (:class:`training.config.AnnGanConfig`).
ANN_SETTINGS = ("epochs", "batch_size", "lr", "beta1", "beta2", "r1", "ema", "lr_decay")
#: The convolutional layout keys of :class:`training.config.AnnGanConfig` (in a reference's budget,
#: and so its cache key, only when it has convolutions).
CONV_KEYS = ("g_conv", "d_conv", "conv_kernel", "conv_stride", "dense_hidden")
#: Columns of ``ann_reference.csv`` (``loss`` = the reference's label).
ANN_COLUMNS = ["loss", "seed", "dataset", *ANN_SETTINGS, "g_sizes", "d_sizes", *QUALITY_MEASURES, "train_seconds"]
#: Rows of the markdown table: (key, description with unit).
TABLE_MEASURES = [
    ("decision_time_ms", f"D decision time (ms {DECISION_ORIGINS['decision_time_ms']}), real + generated"),
    ("decision_time_real_ms", f"D decision time on real images (ms {DECISION_ORIGINS['decision_time_ms']})"),
    ("decision_time_fake_ms", f"D decision time on generated images (ms {DECISION_ORIGINS['decision_time_ms']})"),
    ("decision_latency_ms", f"D decision time (ms {DECISION_ORIGINS['decision_latency_ms']}; ramp: + D's hidden "
                            f"windows)"),
    ("spikes_total", "spikes per sample, G + D"),
    ("spikes_g", "spikes of G per sample"),
    ("spikes_d", "spikes of D per image"),
    ("spikes_d_to_decision", "D spikes up to its decision"),
    ("acs_g", "synaptic ops (ACs) of G per sample"),
    ("acs_d_to_decision", "ACs of D up to its decision"),
    ("clock_updates_d_to_decision", "clock-driven neuron updates of D up to its decision"),
    ("event_updates_d_to_decision", "event-driven neuron updates of D up to its decision"),
    ("energy_total_pj", "energy per sample, G + D to decision (pJ; 0.9 pJ / AC, 45 nm)"),
    ("energy_d_to_decision_pj", "energy of D up to its decision (pJ)"),
    ("ann_energy_total_pj", "same-size ANN, G + D (pJ; 4.6 pJ / MAC)"),
    ("g_last_spike_ms", "G last output spike (ms)"),
    ("g_completion_ms", "G completion: all pixels decided (ms)"),
    ("d_accuracy_real", "D accuracy on real images"),
    ("d_accuracy_fake", "D accuracy on generated images"),
    ("d_tie_rate", "D decisions that are ties (both outputs first)"),
    ("classifier_fid", "classifier-FID (lower = better)"),
    ("kid", "KID (lower = better)"),
    ("class_coverage", "class coverage (fraction of the 10 classes)"),
    ("mean_confidence", "mean classifier confidence"),
    ("inception_score", "inception-style score (max 10)"),
    ("within_class_diversity", "within-class diversity (real images = 1)"),
    ("readable", "readable: share of samples read with confidence >= 0.9"),
    ("nearest_real", "nearest-real distance, relative to real images (real = 1)"),
    ("isolated", "isolated: lit pixels with no lit neighbour"),
    ("speckle", "speckle: lit pixels with at most one lit neighbour"),
    ("train_seconds", "training wall clock (s)"),
]
#: The paper's claims: relative change of Aggressive TTFS against TTFS (fractions).
PAPER_DECISION_CHANGE = -0.33
PAPER_SPIKE_CHANGE = -0.11
#: The baseline group.
BASE = "ttfs"


# ----------------------------------------------------------------------------------------------
# groups of runs


@dataclass(frozen=True)
class Arm:
    """One group of the comparison: its label (``loss`` column) and config overrides."""

    label: str
    overrides: dict[str, Any]


def loss_arms(variants: Sequence[str] | None = None) -> list[Arm]:
    """``ttfs`` and ``aggressive`` (the config's variant), or one ``aggressive-V`` per variant.

    Parameters
    ----------
    variants : e.g. ["A", "B", "C"]; None = the config's own ``loss.variant``

    Returns
    -------
    list of Arm, ``ttfs`` first
    """
    arms = [Arm(BASE, {"loss.kind": "ttfs"})]
    if not variants:
        return arms + [Arm("aggressive", {"loss.kind": "aggressive"})]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown Aggressive TTFS variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
    return arms + [Arm(f"aggressive-{v}", {"loss.kind": "aggressive", "loss.variant": v})
                   for v in dict.fromkeys(variants)]


def run_name(label: str, seed: int) -> str:
    """Folder name of one run: ``{label}_seed{seed}``."""
    return f"{label}_seed{seed}"


def _last_epoch(run_dir: str) -> int:
    path = os.path.join(run_dir, "checkpoint.json")
    if not os.path.exists(path):
        return 0
    try:
        with open(path) as fh:
            return int(json.load(fh).get("epoch", 0))
    except (OSError, ValueError):
        return 0


def train_or_reuse(cfg, run_dir: str, progress: bool = True) -> str:
    """Make sure ``run_dir`` holds a finished run of ``cfg``: reuse, resume or train it.

    Returns
    -------
    "reused", "resumed" or "trained"

    Raises
    ------
    training.trainer.RunError
        ``run_dir`` holds a run of another config.
    """
    cfg_path = os.path.join(run_dir, "config.toml")
    if not os.path.exists(cfg_path):
        train_gan(cfg, run_dir, progress=progress, on_epoch=write_epoch_grid)
        return "trained"
    diff = config_diff(config_mod.to_dict(config_mod.load_record(cfg_path)), config_mod.to_dict(cfg))
    if diff:
        raise RunError(f"{run_dir} holds a run of another config (differs in {', '.join(diff)}); "
                       "delete it or use another output/runs folder")
    if os.path.exists(os.path.join(run_dir, "summary.json")) or _last_epoch(run_dir) >= cfg.train.epochs:
        return "reused"
    train_gan(cfg, run_dir, resume=True, progress=progress, on_epoch=write_epoch_grid)
    return "resumed"


def _train_job(job) -> str:
    if job[0] == "ann":  # ("ann", cfg, seed, ann_dir, cache_dir, n_samples, label, ann_cfg)
        _, cfg, seed, ann_dir, cache_dir, n_samples, label, ann_cfg = job
        data = load_dataset(cfg.data)
        ann_reference(cfg, [seed], ann_dir, data, classifier_for(data, cache_dir), n_samples, False,
                      label, ann_cfg)
        return f"{label} seed {seed}: done"
    _, run_cfg, run_dir = job
    return f"{run_dir}: {train_or_reuse(run_cfg, run_dir, progress=False)}"


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Pool initializer: the worker exits when the process that started it is gone (killed by a
    signal, which skips the pool's shutdown), instead of training on as an orphan. Its run is
    checkpointed atomically, so the next call resumes it."""
    import threading

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_pool(workers: int):
    """A spawn-context process pool whose workers die with their parent (:func:`_exit_with_parent`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _train_in_parallel(jobs, workers: int, progress: bool) -> None:
    """Every job, ``workers`` processes at once: ``("run", cfg, run_dir)`` is a :func:`train_or_reuse`,
    ``("ann", cfg, seed, ann_dir, cache_dir, n_samples, label, ann_cfg)`` one seed of
    :func:`ann_reference` (which caches it; each job is the same computation as in one process)."""
    if progress:
        print(f"training {len(jobs)} runs, {workers} at a time", flush=True)
    with worker_pool(workers) as pool:
        for status in pool.map(_train_job, jobs):
            if progress:
                print(status, flush=True)


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_evaluation(run_dir: str, n_samples: int, classifier_cache: str | None,
                      with_quality: bool = True, seed: int = EVAL_SEED) -> dict[str, Any]:
    """:func:`analysis.evaluate.evaluate_run`, cached in ``run_dir/evaluation.json``.

    The cache is used only if it was made from the same checkpoint (SHA-256) with the same
    ``n_samples``, ``seed``, ``with_quality`` and :data:`MEASURES_VERSION`, and holds every
    measure of :data:`MEASURES`.
    """
    key = {"checkpoint_sha256": file_sha256(os.path.join(run_dir, "checkpoint.npz")),
           "n_samples": int(n_samples), "seed": int(seed), "with_quality": bool(with_quality),
           "measures_version": MEASURES_VERSION}
    path = os.path.join(run_dir, "evaluation.json")
    if os.path.exists(path):
        try:
            with open(path) as fh:
                cached = json.load(fh)
            needed = MEASURES if with_quality else [k for k in MEASURES if k not in QUALITY_MEASURES]
            if cached.get("key") == key and all(k in cached["metrics"] for k in needed):
                return cached["metrics"]                  # (an older cache may lack a newer measure)
        except (OSError, ValueError, KeyError):
            pass
    metrics = evaluate_run(run_dir, n_samples, seed, with_quality, classifier_cache)
    atomic_json(path, {"key": key, "metrics": metrics})
    return metrics


def train_seconds(run_dir: str) -> float:
    """Training wall clock of a run: the sum of its epochs' ``epoch_seconds`` (NaN if unknown)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return float("nan")
    _, epochs = read_metrics(path)
    vals = [e["epoch_seconds"] for e in epochs if "epoch_seconds" in e]
    return float(sum(vals)) if vals else float("nan")


def comparison_row(label: str, seed: int, cfg, metrics: dict[str, Any], run_dir: str,
                   seconds: float) -> dict[str, Any]:
    """One CSV row (:data:`COLUMNS`) from a run's config and measures."""
    row: dict[str, Any] = {"loss": label, "seed": int(seed), "dataset": cfg.data.dataset,
                           "kind": cfg.loss.kind,
                           "variant": cfg.loss.variant if cfg.loss.kind == "aggressive" else "",
                           "alpha": cfg.loss.alpha if cfg.loss.kind == "aggressive" else "",
                           "epochs": int(metrics.get("epoch", cfg.train.epochs))}
    row.update({k: metrics.get(k, "") for k in MEASURES})
    row["train_seconds"] = seconds
    row["run"] = run_dir
    return row


# ----------------------------------------------------------------------------------------------
# the non-spiking reference


def _mlp_hidden(net, dense_hidden: list[int]) -> list[int]:
    """An MLP reference's hidden layers for a spiking G or D: its dense hidden layers; for one whose
    hidden layers are all convolutional (``conv`` set, ``hidden`` empty), ``dense_hidden``, the
    dense pair's (:data:`training.config.DENSE_RECIPE`), so that the MLP stays the one the README
    compares against and does not lose its hidden layer."""
    return [int(h) for h in (net.hidden if net.hidden or not net.conv else dense_hidden)]


def _dense_pair() -> GanConfig:
    """The dense pair (``configs/dense_single.toml``): the MLP references' layer sizes."""
    return config_mod.override(GanConfig(), DENSE_RECIPE)


def ann_budget(cfg, ann_cfg: AnnGanConfig = ANN_UNTUNED) -> dict[str, Any]:
    """The ANN GAN's settings for a spiking config: the spiking pair's sizes and digits, and the
    training keys of ``ann_cfg`` (its epochs and batch size of 0: the spiking config's)."""
    train = dataclasses.asdict(ann_cfg.resolved(cfg))
    conv = {k: train.pop(k) for k in CONV_KEYS}
    dense = conv.pop("dense_hidden")
    out = {"noise_dim": int(cfg.generator.noise_dim),
           "g_hidden": _mlp_hidden(cfg.generator, _dense_pair().generator.hidden) if dense else [],
           "d_hidden": _mlp_hidden(cfg.discriminator, _dense_pair().discriminator.hidden) if dense else [],
           "epochs": train.pop("epochs"), "batch_size": train.pop("batch_size"),
           "data": config_mod.to_dict(cfg.data), **train}
    if conv["g_conv"] or conv["d_conv"]:  # (an MLP's budget, its cache key, stays what it was)
        out.update(conv)
    return out


def ann_reference(cfg, seeds: Sequence[int], ann_dir: str, data, classifier, n_samples: int = 1000,
                  progress: bool = True, label: str = "ann",
                  ann_cfg: AnnGanConfig = ANN_UNTUNED) -> list[dict[str, Any]]:
    """Train (or reuse) one non-spiking reference GAN once per seed and measure its sample quality.

    Parameters
    ----------
    cfg : the spiking GanConfig (its sizes and data; :func:`ann_budget`)
    seeds : training seeds
    ann_dir : folder of ``{label}_seed{s}.npz`` (weights) and ``{label}_seed{s}.json`` (measures)
    data : training.data.Dataset of ``cfg.data``
    classifier : the quality classifier (the one the spiking runs are measured with)
    n_samples : generated samples, noise seed :data:`analysis.evaluate.EVAL_SEED` (from G's weight
        average when ``ann_cfg.ema`` > 0)
    label : the reference's name (its rows' ``loss``)
    ann_cfg : its training keys (:data:`training.config.ANN_REFERENCES`)

    Returns
    -------
    list of rows (:data:`ANN_COLUMNS`), ``loss`` = ``label``
    """
    os.makedirs(ann_dir, exist_ok=True)
    budget = ann_budget(cfg, ann_cfg)
    rows = []
    for seed in seeds:
        base = os.path.join(ann_dir, f"{label}_seed{seed}")
        key = dict(budget, seed=int(seed), n_samples=int(n_samples), eval_seed=EVAL_SEED)
        row = _cached_ann_row(base, key)
        if row is not None and progress:
            print(f"ANN GAN {label} seed {seed}: reusing {base}.npz", flush=True)
        if row is not None and any(k not in row for k in QUALITY_MEASURES):
            # a cache from before a measure was added: measure the saved GAN again, no retraining
            row.update(_ann_quality(load_ann_gan(base + ".npz"), classifier, data, n_samples))
            atomic_json(base + ".json", {"key": key, "row": row})
        if row is None:
            if progress:
                g_sizes, _, d_sizes, _ = layout(budget["noise_dim"], budget["g_hidden"], budget["d_hidden"],
                                                **{k: budget[k] for k in CONV_KEYS if k in budget})
                print(f"ANN GAN {label} seed {seed}: training {budget['epochs']} epochs "
                      f"(G {'-'.join(map(str, g_sizes))}, D {'-'.join(map(str, d_sizes))}; "
                      f"R1 {budget['r1']:g}, weight average {budget['ema']:g})", flush=True)
            t0 = time.perf_counter()
            gan = train_ann_gan(data.train_images, noise_dim=budget["noise_dim"], g_hidden=budget["g_hidden"],
                                d_hidden=budget["d_hidden"], epochs=budget["epochs"],
                                batch_size=budget["batch_size"], lr=budget["lr"], beta1=budget["beta1"],
                                beta2=budget["beta2"], r1=budget["r1"], ema=budget["ema"],
                                lr_decay=budget["lr_decay"], seed=int(seed), progress=progress,
                                **{k: budget[k] for k in CONV_KEYS if k in budget})
            seconds = time.perf_counter() - t0
            save_ann_gan(gan, base + ".npz", {"budget": key})
            row = {"loss": label, "seed": int(seed), "g_sizes": "-".join(map(str, gan.g_sizes)),
                   "d_sizes": "-".join(map(str, gan.d_sizes)), "train_seconds": seconds,
                   **{k: budget[k] for k in ANN_SETTINGS}}
            row.update(_ann_quality(gan, classifier, data, n_samples))
            atomic_json(base + ".json", {"key": key, "row": row})
        rows.append(dict(row, dataset=data.name))  # (the key holds cfg.data: one cache per data set)
    return rows


def _ann_quality(gan, classifier, data, n_samples: int) -> dict[str, Any]:
    """The :data:`QUALITY_MEASURES` of ``n_samples`` of an ANN GAN's samples (noise seed EVAL_SEED)."""
    images = gan.generate(n_samples, np.random.default_rng(EVAL_SEED))
    q = evaluate_samples(images, classifier, data.test_images / 255.0, seed=EVAL_SEED,
                         train_images01=data.train_images / 255.0)
    return {k: q[k] for k in QUALITY_MEASURES}


def _cached_ann_row(base: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached row of ``base.json`` if it has this key and ``base.npz`` loads, else None."""
    try:
        with open(base + ".json") as fh:
            cached = json.load(fh)
        if cached.get("key") != key:
            return None
        load_ann_gan(base + ".npz")
        return cached["row"]
    except (OSError, ValueError, KeyError, AttributeError):
        return None


# ----------------------------------------------------------------------------------------------
# statistics (pure)


def _values(rows: Sequence[dict[str, Any]], label: str, key: str) -> dict[int, float]:
    out = {}
    for r in rows:
        if r.get("loss") == label:
            v = plots.as_float(r.get(key))
            if np.isfinite(v):
                out[int(r["seed"])] = v
    return out


def summarise(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, tuple]]:
    """Per group label and key: ``(mean, std, n)`` over seeds (see :func:`mean_std`)."""
    out: dict[str, dict[str, tuple]] = {}
    for label in dict.fromkeys(r["loss"] for r in rows):
        out[label] = {}
        for k in keys:
            vals = list(_values(rows, label, k).values())
            out[label][k] = (*mean_std(vals), len(vals))
    return out


def relative_change(rows: Sequence[dict[str, Any]], label: str, key: str, base: str = BASE) -> dict[str, float]:
    """Relative change of ``key`` from group ``base`` to group ``label`` (fractions).

    Returns
    -------
    dict with ``of_means`` = (mean_label - mean_base) / mean_base, and ``paired_mean`` /
    ``paired_std`` (ddof=1) / ``n_pairs`` of the per-seed changes (x_label,s - x_base,s) /
    x_base,s over the seeds present in both groups. NaN where undefined.
    """
    a, b = _values(rows, label, key), _values(rows, base, key)
    ma, mb = mean_std(a.values())[0], mean_std(b.values())[0]
    of_means = (ma - mb) / mb if np.isfinite(mb) and mb != 0 else float("nan")
    seeds = sorted(s for s in a if s in b and b[s] != 0)
    pm, ps = mean_std([(a[s] - b[s]) / b[s] for s in seeds])
    return {"of_means": float(of_means), "paired_mean": pm, "paired_std": ps, "n_pairs": len(seeds)}


def claim_verdict(decision_change: float, spike_change: float) -> str:
    """A plain sentence: do the relative changes reach the paper's -33 % and -11 %?"""
    if not (np.isfinite(decision_change) and np.isfinite(spike_change)):
        return "cannot be judged (a measure is missing)"
    d_ok = decision_change <= PAPER_DECISION_CHANGE
    s_ok = spike_change <= PAPER_SPIKE_CHANGE
    if d_ok and s_ok:
        return "reaches both of the paper's numbers"
    if d_ok:
        return "reaches the paper's inference-time number but not its spike number"
    if s_ok:
        return "reaches the paper's spike number but not its inference-time number"
    return "reaches neither of the paper's numbers"


# ----------------------------------------------------------------------------------------------
# files


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _pct(v: float) -> str:
    return f"{100 * v:+.1f} %" if np.isfinite(v) else "n/a"


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: str) -> None:
    """Rows as CSV (header = ``columns``; missing values empty), written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c, "")) for c in columns})
    atomic_write(path, buf.getvalue())


def read_csv(path: str) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


#: Column heads of the ANN references in ``loss_comparison.md``.
ANN_TITLES = {"ann": "ANN GAN, untuned (ann)", "ann_tuned": "ANN GAN, tuned (ann_tuned)",
              "ann_conv": "conv ANN GAN, tuned (ann_conv)"}


def _ann_title(label: str) -> str:
    return ANN_TITLES.get(label, f"ANN GAN ({label})")


def real_value(rows: Sequence[dict[str, Any]], key: str) -> float:
    """The real test digits' value of measure ``key`` (:data:`REAL_VALUES`; NaN if it has none)."""
    if key not in REAL_VALUES:
        return float("nan")
    if REAL_VALUES[key] is None:
        return 1.0
    vals = [plots.as_float(r.get(REAL_VALUES[key])) for r in rows]
    vals = [v for v in vals if np.isfinite(v)]
    return float(vals[0]) if vals else float("nan")


def _ann_settings(r: dict[str, Any]) -> str:
    """One reference's training in words."""
    def num(k, default):
        v = plots.as_float(r.get(k, default))
        return v if np.isfinite(v) else default
    parts = [f"{int(num('epochs', 0))} epochs, batch {int(num('batch_size', 0))}, Adam "
             f"{num('lr', 2e-4):g} / {num('beta1', 0.5):g}"]
    parts.append(f"R1 gamma {num('r1', 0):g}" if num("r1", 0) else "no R1")
    parts.append(f"sampled from G's weight average (EMA {num('ema', 0):g})" if num("ema", 0)
                 else "G's last weights")
    if num("lr_decay", 1.0) != 1.0:
        parts.append(f"lr x {num('lr_decay', 1.0):g} per epoch")
    if r.get("g_sizes") and r.get("d_sizes"):
        parts.append(f"G {r['g_sizes']}, D {r['d_sizes']} neurons")
    return ", ".join(parts)


def comparison_markdown(rows: Sequence[dict[str, Any]], ann_rows: Sequence[dict[str, Any]] = (),
                        header: str = "") -> str:
    """``loss_comparison.md``: mean +- std per group, relative changes, the paper verdict.

    Parameters
    ----------
    rows : the CSV rows (:data:`COLUMNS`)
    ann_rows : the ANN references' rows (:data:`ANN_COLUMNS`; one column per ``loss`` label)
    header : lines put under the title (provenance, settings)
    """
    labels = list(dict.fromkeys(r["loss"] for r in rows))
    aggressive = [lab for lab in labels if lab != BASE]
    ann_labels = list(dict.fromkeys(r["loss"] for r in ann_rows))
    keys = [k for k, _ in TABLE_MEASURES]
    stats = summarise(list(rows) + list(ann_rows), keys)
    seeds = sorted({int(r["seed"]) for r in rows})
    datasets = ", ".join(sorted({str(r.get("dataset", "")) for r in rows})) or "unknown"
    lines = ["# Loss comparison: S4NN TTFS vs Aggressive TTFS", "",
             f"Data set: **{datasets}** (training images, the real reference images and the quality "
             "classifier, trained on its training images).", ""]
    if header:
        lines += [header.rstrip(), ""]
    lines += [f"Mean +- standard deviation (ddof = 1) over {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
              "the change is that of the means, then in brackets the mean +- std of the per-seed "
              "(paired, same seed) changes.", ""]
    head = (["measure", "real test images"] + labels + [f"{lab} vs {BASE}" for lab in aggressive]
            + [_ann_title(lab) for lab in ann_labels])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, desc in TABLE_MEASURES:
        cells = [desc, _fmt(real_value(list(rows) + list(ann_rows), key)) if key in REAL_VALUES else ""]
        for lab in labels:
            m, s, n = stats[lab][key]
            cells.append(f"{_fmt(m)} +- {_fmt(s)}" if n else "n/a")
        for lab in aggressive:
            ch = relative_change(rows, lab, key)
            cells.append(f"{_pct(ch['of_means'])} ({_pct(ch['paired_mean'])} +- {_pct(ch['paired_std'])[1:]})"
                         if np.isfinite(ch["of_means"]) else "n/a")
        for lab in ann_labels:
            m, s, n = stats[lab][key]
            cells.append(f"{_fmt(m)} +- {_fmt(s)}" if n else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Readable: the share of samples the quality classifier reads with confidence >= 0.9. "
              "Nearest-real: the mean pixel distance of each sample to its nearest training image over "
              "the same for real test images. Isolated: lit pixels (> 0.5) with no lit 8-neighbour, per "
              "lit pixel (speckle: at most one). Definitions: `analysis/evaluate.py`.",
              "", "## Against the paper", "",
              "Kotariya & Ganguly (2021) report that Aggressive TTFS makes inference more than 33 % "
              "faster and uses more than 11 % fewer spikes than the TTFS loss. Here inference time is "
              "D's decision time and spikes are those of G and D per sample (see "
              "`analysis/evaluate.py`).", ""]
    for lab in aggressive:
        d = relative_change(rows, lab, "decision_time_ms")["of_means"]
        sp = relative_change(rows, lab, "spikes_total")["of_means"]
        sd = relative_change(rows, lab, "spikes_d_to_decision")["of_means"]
        en = relative_change(rows, lab, "energy_total_pj")["of_means"]
        fid = relative_change(rows, lab, "classifier_fid")["of_means"]
        lines.append(f"- **{lab}**: decision time {_pct(d)}, spikes (G + D) {_pct(sp)}, D spikes up to "
                     f"the decision {_pct(sd)}, energy (G + D to decision) {_pct(en)}, classifier-FID "
                     f"{_pct(fid)}. This "
                     f"{claim_verdict(d, sp)} (needs <= -33 % and <= -11 %).")
    if ann_rows:
        first = {lab: next(r for r in ann_rows if r["loss"] == lab) for lab in ann_labels}
        lines += ["", "## Non-spiking references", "",
                  "ANN GANs (`analysis/ann_gan.py`; leaky ReLU, non-saturating loss; the MLPs have the "
                  "spiking pair's layer sizes" + (", the conv one is a small DCGAN" if "ann_conv" in ann_labels
                                                  else "") + ") on the same training images, "
                  "measured with the same classifier on the same real test images:", ""]
        for lab in ann_labels:
            lines.append(f"- **{_ann_title(lab)}**: {_ann_settings(first[lab])}; classifier-FID "
                         f"{_fmt(stats[lab]['classifier_fid'][0])}, readable "
                         f"{_fmt(stats[lab]['readable'][0])}.")
        notes = {"ann": "The untuned reference has the spiking pair's epochs and batch size and plain Adam.",
                 "ann_tuned": "The tuned one gets the kinds of help the spiking pair got (an R1 penalty on "
                              "D, a schedule search, and a weight average of G): its settings were chosen "
                              "by `experiments/ann_tuning.py` on seed 0 of the embedded digits, with their "
                              "quality classifier and test digits, as the spiking recipe was chosen on "
                              "seeds 0-4 (docs/experiments.md 1.6, 6).",
                 "ann_conv": "The conv one has the tuned one's R1 and weight average, untuned beyond them."}
        lines += ["", " ".join([notes[lab] for lab in ann_labels if lab in notes]
                               + ["Same budget means passes over the data, not the wall clock (which "
                                  "measures the implementation and the machine; both are in the tables)."])]
    lines += ["", "## Energy convention", ""] + [f"- {n}" for n in energy.NOTES]
    return "\n".join(lines) + "\n"


def sample_panels(res: dict[str, Any], data, n: int = 64) -> list[tuple[str, np.ndarray]]:
    """(title, images) of the real test digits, each spiking group and each ANN reference (their
    first seed; noise seed EVAL_SEED), for :func:`analysis.plots.plot_grids`.

    Parameters
    ----------
    res : the result of :func:`compare_losses`
    data : its data set
    n : images per panel
    """
    def title(name, row):
        return (f"{name}\nreadable {plots.as_float(row.get('readable')):.2f}, nearest-real "
                f"{plots.as_float(row.get('nearest_real')):.2f}, isolated {plots.as_float(row.get('isolated')):.4f}")

    real = {"readable": real_value(res["rows"], "readable"), "nearest_real": 1.0,
            "isolated": real_value(res["rows"], "isolated")}
    panels = [(title("real test images", real), data.test_images[:n] / 255.0)]
    first = res["seeds"][0]
    for label, dirs in res["runs"].items():
        row = next(r for r in res["rows"] if r["loss"] == label and r["seed"] == first)
        gan, _, _ = load_gan(dirs[0])
        images, _ = gan.generate(np.random.default_rng(EVAL_SEED), n)
        panels.append((title(f"spiking pair, {label} loss, seed {first}", row), images))
    for row in res["ann_rows"]:
        if row["seed"] == first:
            ann = load_ann_gan(os.path.join(res["ann_dir"], f"{row['loss']}_seed{first}.npz"))
            panels.append((title(f"{_ann_title(row['loss'])}, seed {first}", row),
                           ann.generate(n, np.random.default_rng(EVAL_SEED))))
    return panels


# ----------------------------------------------------------------------------------------------
# the experiment


@holds_folder()
def compare_losses(cfg, out_dir: str, n_seeds: int = 3, runs_dir: str | None = None,
                   variants: Sequence[str] | None = None, n_samples: int = 1000, ann: bool = True,
                   cache_dir: str | None = None, progress: bool = True, header: str = "",
                   command: str = "compare-losses", workers: int = 1,
                   ann_references: dict[str, AnnGanConfig] | None = None) -> dict[str, Any]:
    """Train, evaluate and compare the TTFS and Aggressive TTFS losses (see module docstring).

    Parameters
    ----------
    cfg : training.config.GanConfig; its ``loss.kind`` is overridden per group, its ``seed``
        is the first seed (then ``seed + 1``, ...)
    out_dir : folder of the CSV, MD and PNG (created with its parents; an existing one must hold
        an earlier output of ``command``)
    n_seeds : seeds per group
    runs_dir : folder of the run folders (default ``out_dir/runs``)
    variants : Aggressive TTFS variants to include as their own groups (default: the config's)
    n_samples : generated samples per evaluation
    ann : also train and measure the non-spiking reference GANs
    cache_dir : folder of the shared quality classifier (default ``out_dir``)
    progress : print progress lines and training bars
    header : provenance lines for the markdown file
    command : the command whose output folders ``out_dir`` (and a given ``runs_dir``) are
        (``run.json``; :func:`training.runinfo.check_out_dir`)
    workers : train up to this many runs at once, in separate processes (each run is the
        same as when trained alone: training pins BLAS to one thread)
    ann_references : label -> training keys of each ANN reference (default
        :data:`training.config.ANN_REFERENCES`: the untuned ``ann`` and the tuned ``ann_tuned``)

    Returns
    -------
    dict with ``rows``, ``ann_rows``, ``runs`` ({label: [run folders]}) and ``files``
    """
    if n_seeds < 1:
        raise ValueError(f"--n-seeds must be >= 1, got {n_seeds}")
    if n_samples < 2:
        raise ValueError(f"--n must be >= 2, got {n_samples}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    seeds = [cfg.seed + k for k in range(n_seeds)]
    arms = loss_arms(variants)
    # every input is checked before a folder is created (training.runinfo.check_out_dir)
    own_runs = runs_dir is None
    runs_dir = runs_dir or os.path.join(out_dir, "runs")
    cache_dir = cache_dir or out_dir
    action = check_out_dir(out_dir, command, reuse=True)
    runs_action = None if own_runs else check_out_dir(runs_dir, command, reuse=True, option="--runs-dir")
    data = load_dataset(cfg.data)
    check_evaluation_size(cfg, n_samples)
    make_out_dir(out_dir, command, action, run_record(cfg.seed), refresh=True)  # records this invocation
    if own_runs:
        os.makedirs(runs_dir, exist_ok=True)
    else:
        make_out_dir(runs_dir, command, runs_action, run_record(cfg.seed))
    clf = classifier_for(data, cache_dir)                # trained once, up front, then loaded by every run
    plan = [(arm.label, seed, config_mod.override(cfg, dict(arm.overrides, seed=seed)),
             os.path.join(runs_dir, run_name(arm.label, seed))) for arm in arms for seed in seeds]
    ann_dir = os.path.join(runs_dir, "ann")
    refs = (ANN_REFERENCES if ann_references is None else ann_references) if ann else {}
    if workers > 1:
        _train_in_parallel([("run", run_cfg, run_dir) for _, _, run_cfg, run_dir in plan]
                           + [("ann", cfg, seed, ann_dir, cache_dir, n_samples, label, ann_cfg)
                              for label, ann_cfg in refs.items() for seed in seeds], workers, progress)
    rows, runs = [], {}
    total = len(plan)
    for done, (label, seed, run_cfg, run_dir) in enumerate(plan, start=1):
        if progress:
            print(f"[{done}/{total}] {label} seed {seed}: {run_dir}", flush=True)
        status = train_or_reuse(run_cfg, run_dir, progress)
        metrics = cached_evaluation(run_dir, n_samples, cache_dir)
        rows.append(comparison_row(label, seed, run_cfg, metrics, run_dir, train_seconds(run_dir)))
        runs.setdefault(label, []).append(run_dir)
        if progress:
            print(f"[{done}/{total}] {label} seed {seed} ({status}): decision "
                  f"{metrics['decision_time_ms']:.1f} ms, spikes {metrics['spikes_total']:.0f}, "
                  f"classifier-FID {metrics['classifier_fid']:.1f}", flush=True)
    ann_rows = [row for label, ann_cfg in refs.items()
                for row in ann_reference(cfg, seeds, ann_dir, data, clf, n_samples, progress, label, ann_cfg)]
    files = {name: os.path.join(out_dir, name) for name in
             ("loss_comparison.csv", "loss_comparison.md", "loss_comparison.png", "quality_grids.png")}
    write_csv(rows, COLUMNS, files["loss_comparison.csv"])
    if ann_rows:
        files["ann_reference.csv"] = os.path.join(out_dir, "ann_reference.csv")
        write_csv(ann_rows, ANN_COLUMNS, files["ann_reference.csv"])
    atomic_write(files["loss_comparison.md"], comparison_markdown(rows, ann_rows, header))
    plots.plot_loss_comparison(rows, files["loss_comparison.png"], base=BASE,
                               reference_rows=[dict(r, loss=r["loss"].replace("_", " ")) for r in ann_rows],
                               title=f"TTFS vs Aggressive TTFS, {cfg.data.dataset}, {len(seeds)} seeds "
                                     f"(epochs: {cfg.train.epochs}, window {cfg.neuron.t_max * cfg.neuron.dt_ms:g} ms)")
    res = {"rows": rows, "ann_rows": ann_rows, "runs": runs, "files": files, "seeds": seeds,
           "ann_dir": ann_dir}
    plots.plot_grids(sample_panels(res, data), files["quality_grids.png"],
                     title=f"{cfg.data.dataset}: real images, the spiking pair and the ANN references "
                           f"(noise seed {EVAL_SEED})")
    return res
