"""Training runs of the Spiking-GAN: run folder, checkpoints, metrics, resume.

A run folder holds::

    config.toml        the resolved config (the run's single source of truth)
    run.json           the command that made the folder (train), seed, package versions,
                       git commit, command line
    checkpoint.npz     weights of G and D + JSON metadata (epoch, RNG state), atomic
    checkpoint.json    the same metadata, for people
    metrics.jsonl      one line per training step (and one per epoch, "kind": "epoch")
    samples/epoch_NNN.png   a grid of samples after every epoch
    summary.json       final metrics, written when the run is complete

A checkpoint is written after every epoch, so an interrupted run (Ctrl-C,
kill) loses at most one epoch; ``resume=True`` continues from it, with the RNG
state restored, so the resumed run is identical to an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import numpy as np

from models.errors import SpikingGanError
from models.kernel import blas_threads
from models.resources import check_memory, training_bytes
from training import checkpoint
from training import config as config_mod
from training.config import ConfigError, GanConfig
from training.data import load_dataset
from training.gan import N_CLASSES, Gan, gan_step
from training.networks import weight_shapes
from training.runinfo import (
    atomic_json,
    atomic_write,
    check_out_dir,
    folder_command,
    holds_folder,
    make_out_dir,
    run_record,
)


class RunError(SpikingGanError, RuntimeError):
    """The run folder cannot be used as asked."""


def _epoch_summary(step_metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in step_metrics[0] if k not in ("epoch", "step", "kind")]
    return {k: float(np.mean([m[k] for m in step_metrics])) for k in keys}


def _keep_metrics_until(path: str, epoch: int) -> None:
    """Drop metric lines of epochs after the checkpoint (they are re-run on resume)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as fh:
        for line in fh:
            try:
                if json.loads(line).get("epoch", 0) <= epoch:
                    keep.append(line)
            except json.JSONDecodeError:
                break  # a line cut by the interruption
    atomic_write(path, "".join(keep))


#: Config keys that may change when a run is resumed (to extend it).
RESUMABLE_OVERRIDES = ("train.epochs",)
#: Command-line options of the resumable keys (for the messages).
OPTION_OF = {"train.epochs": "--epochs"}


def _resume_config(cfg: GanConfig | None, out_dir: str, overrides: dict | None) -> GanConfig:
    """The config a resumed run uses: the recorded one, extended by ``overrides``."""
    cfg_path = os.path.join(out_dir, "config.toml")
    made_by = folder_command(out_dir) if os.path.isdir(out_dir) else None
    if made_by not in (None, "train"):
        raise RunError(f"--resume: {out_dir} holds the output of `spiking-gan {made_by}`, not a train run")
    if not os.path.exists(cfg_path):
        raise RunError(f"--resume: {out_dir} holds no run (no config.toml)")
    recorded = config_mod.load_record(cfg_path)
    if cfg is not None and cfg != recorded:
        diff = config_mod.config_diff(config_mod.to_dict(recorded), config_mod.to_dict(cfg))
        raise RunError(f"--resume: the given config differs from the run's recorded config in "
                       f"{', '.join(diff)}; leave out --config to resume as recorded")
    bad = sorted(set(overrides or {}) - set(RESUMABLE_OVERRIDES))
    if bad:
        raise RunError(f"--resume: {', '.join(bad)} cannot change in a resumed run "
                       f"(only {', '.join(RESUMABLE_OVERRIDES)})")
    return config_mod.override(recorded, overrides) if overrides else recorded


def _resume_checkpoint(cfg: GanConfig, out_dir: str):
    """The checkpoint a resumed run continues from (None: no epoch finished yet), checked
    against the config: layer sizes, metadata, and ``train.epochs`` >= the finished epochs."""
    path = os.path.join(out_dir, "checkpoint.npz")
    if not os.path.exists(path):
        return None
    nets, meta = checkpoint.load(path, require=("epoch", "step", "rng_state"))
    checkpoint.check_shapes(nets, Gan.sizes(cfg), path, _banks(cfg), weight_shapes(cfg))
    Gan.init(cfg, np.random.default_rng(0)).load_state(nets, meta, path)  # every array family, before any write
    try:
        np.random.default_rng(0).bit_generator.state = meta["rng_state"]
    except (TypeError, ValueError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint {path}: metadata 'rng_state' is not a state of "
                                         f"this generator ({type(exc).__name__}: {exc})") from None
    if cfg.train.epochs < meta["epoch"]:
        raise RunError(f"--resume: {OPTION_OF['train.epochs']} {cfg.train.epochs} is below the "
                       f"{meta['epoch']} epochs the run has finished; give --epochs {meta['epoch']} or more")
    return nets, meta


def _check_batches(cfg: GanConfig, data) -> int:
    """Training steps per epoch; raises if a step needs more images than there are."""
    B, k = cfg.train.batch_size, cfg.train.d_steps
    # per_class: batch_size images of every class in each batch, so the smallest class sets the epoch
    pool = (int(np.bincount(data.train_labels, minlength=N_CLASSES).min()) if cfg.per_class
            else len(data.train_images))
    if pool < B * k:
        raise ConfigError(f"{'per_class: ' if cfg.per_class else ''}train.batch_size * train.d_steps = "
                          f"{B * k} exceeds the {pool} training images"
                          + (" of the smallest class" if cfg.per_class else ""))
    return pool // (B * k)


def prepare_run(cfg: GanConfig | None, out_dir: str, resume: bool,
                overrides: dict | None = None, force: bool = False):
    """Check everything a run needs, then create or re-open its folder.

    Nothing is written until the config, the data set, the batch size and (on resume) the
    checkpoint have been checked: a failing check leaves the folder as it was.

    Returns
    -------
    cfg : the config the run uses (on resume: the recorded one, extended by ``overrides``,
        which may only change :data:`RESUMABLE_OVERRIDES`)
    data : the training data set
    resumed : (networks, metadata) of the checkpoint to continue from, or None
    """
    if resume:
        cfg = _resume_config(cfg, out_dir, overrides)
        resumed = _resume_checkpoint(cfg, out_dir)
        action = "reuse"
    else:
        if cfg is None:
            raise RunError("no config given")
        action = check_out_dir(out_dir, "train", force=force,
                               hint="continue it with --resume, replace it with --force, or choose another --out")
        resumed = None
    net_sizes, banks = Gan.sizes(cfg), N_CLASSES if cfg.per_class else 1
    check_memory(training_bytes([net_sizes["g"], net_sizes["d"]], cfg.train.batch_size * cfg.train.d_steps * banks,
                                banks),
                 "the config's layer sizes and train.batch_size", "training these networks")
    data = load_dataset(cfg.data)
    _check_batches(cfg, data)
    cfg_path = os.path.join(out_dir, "config.toml")
    if resume:
        if overrides:
            atomic_write(cfg_path, config_mod.to_toml(cfg))
        return cfg, data, resumed
    # train.threads is in config.toml too; run.json says beside the host how many cores it had
    make_out_dir(out_dir, "train", action, run_record(cfg.seed, {"kind": "gan", "threads": cfg.train.threads,
                                                                 "cores": os.cpu_count()}))
    os.makedirs(os.path.join(out_dir, "samples"), exist_ok=True)
    atomic_write(cfg_path, config_mod.to_toml(cfg))
    return cfg, data, None


def load_gan(run_dir: str, averaged: bool = True) -> tuple[Gan, GanConfig, dict]:
    """The trained GAN of a run folder (last checkpoint), its config and checkpoint metadata.

    ``averaged``: G is the moving average of its weights where the run keeps one
    (``ramp.g_ema``: what samples, evaluation and figures use); False: G's last weights."""
    cfg_path = os.path.join(run_dir, "config.toml")
    if not os.path.exists(cfg_path):
        raise RunError(f"{run_dir} is not a run folder (no config.toml)")
    made_by = folder_command(run_dir)
    if made_by not in (None, "train"):
        raise RunError(f"{run_dir} holds the output of `spiking-gan {made_by}`, not a trained GAN")
    cfg = config_mod.load_record(cfg_path)
    path = os.path.join(run_dir, "checkpoint.npz")
    nets, meta = checkpoint.load(path)
    checkpoint.check_shapes(nets, Gan.sizes(cfg), path, _banks(cfg), weight_shapes(cfg))
    gan = Gan.init(cfg, np.random.default_rng(0))
    gan.load_state(nets, meta, path)
    return (gan.for_sampling() if averaged else gan), cfg, meta


#: ``on_epoch(epoch, gan, cfg, out_dir)``: called after every epoch, before its checkpoint.
EpochCallback = Callable[[int, Gan, GanConfig, str], None]


@holds_folder("train")
def train_gan(cfg: GanConfig | None, out_dir: str, resume: bool = False,
              progress: bool = True, overrides: dict | None = None, force: bool = False,
              on_epoch: EpochCallback | None = None) -> dict[str, float]:
    """Train (or resume) a Spiking-GAN run in ``out_dir``; returns the final epoch's metrics.

    Parameters
    ----------
    cfg : GanConfig, or None to resume with the recorded config
    out_dir : run folder (created with its parents; an existing one must be empty, see
        :func:`training.runinfo.check_out_dir`)
    resume : continue from the last checkpoint in ``out_dir``
    progress : tqdm bar and one line per epoch
    overrides : on resume, dotted keys that may change (``train.epochs``)
    force : replace a finished or interrupted train run in ``out_dir``
    on_epoch : progress callback after every epoch, e.g.
        :func:`experiments.report.write_epoch_grid` (the run's ``samples/epoch_NNN.png``)
    """
    from tqdm import tqdm

    cfg, data, resumed = prepare_run(cfg, out_dir, resume, overrides, force)
    rng = np.random.default_rng(cfg.seed)
    gan = Gan.init(cfg, rng)
    t_real = gan.encode_real(data.train_images)
    ckpt_path = os.path.join(out_dir, "checkpoint.npz")
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    start_epoch, step = 0, 0
    if resumed is not None:
        nets, meta = resumed
        gan.load_state(nets, meta, ckpt_path)
        rng.bit_generator.state = meta["rng_state"]
        start_epoch, step = meta["epoch"], meta["step"]
        if progress:
            print(f"resuming {out_dir} after epoch {start_epoch}")
    _keep_metrics_until(metrics_path, start_epoch)

    B, k = cfg.train.batch_size, cfg.train.d_steps
    labels = data.train_labels
    steps_per_epoch = _check_batches(cfg, data)
    if cfg.per_class:
        B *= N_CLASSES
    per_step = B * k
    summary: dict[str, float] = {}

    def on_term(signum, frame):  # turn kill (SIGTERM) into a clean interruption
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        with blas_threads(cfg.train.threads):  # 1 (default): the same results on every machine
            for epoch in range(start_epoch, cfg.train.epochs):
                order = (_class_balanced_order(labels, cfg.train.batch_size, rng) if cfg.per_class
                         else rng.permutation(len(t_real)))
                epoch_metrics = []
                t0 = time.perf_counter()
                bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                           disable=not progress, leave=False, unit="step")
                with open(metrics_path, "a") as log:
                    for s in bar:
                        ts = time.perf_counter()
                        idx = order[s * per_step:(s + 1) * per_step]
                        parts = [idx[j * B:(j + 1) * B] for j in range(k)]
                        m = gan_step(gan, cfg, [t_real[p] for p in parts], rng, [labels[p] for p in parts],
                                     cfg.train.lr_decay ** epoch)
                        step += 1
                        m["samples_per_s"] = per_step / (time.perf_counter() - ts)
                        epoch_metrics.append(m)
                        log.write(json.dumps({"epoch": epoch + 1, "step": step, **m}) + "\n")
                        bar.set_postfix(d_real=f"{m['d_acc_real']:.2f}", d_fake=f"{m['d_acc_fake']:.2f}",
                                        t_dec=f"{m['decision_time_ms']:.0f}ms")
                    summary = _epoch_summary(epoch_metrics)
                    for name in ("g", "d"):  # the networks' end-of-epoch rules (S4NN: dead neurons re-drawn)
                        for key, value in getattr(gan, name).end_epoch(rng).items():
                            summary[f"{key}_{name}"] = value
                    summary["epoch_seconds"] = time.perf_counter() - t0
                    log.write(json.dumps({"kind": "epoch", "epoch": epoch + 1, "step": step, **summary}) + "\n")
                for name, ws in gan.state().items():
                    if not all(np.all(np.isfinite(w)) for w in ws):
                        raise RunError(f"training diverged: non-finite weights in {name} at epoch {epoch + 1}; "
                                       f"lower the learning rates (last checkpoint kept)")
                if on_epoch is not None:
                    on_epoch(epoch + 1, gan, cfg, out_dir)
                meta = {"epoch": epoch + 1, "step": step, "rng_state": rng.bit_generator.state,
                        "loss": cfg.loss.kind, "seed": cfg.seed}
                meta.update(gan.counters())
                checkpoint.save(ckpt_path, gan.state(), meta)
                atomic_json(os.path.join(out_dir, "checkpoint.json"), meta)
                if progress:
                    print(f"epoch {epoch + 1}/{cfg.train.epochs}: D acc real {summary['d_acc_real']:.2f} "
                          f"fake {summary['d_acc_fake']:.2f}, decision {summary['decision_time_ms']:.1f} ms, "
                          f"spikes G {summary['g_spikes']:.0f} D {summary['d_spikes']:.0f}, "
                          f"{summary['samples_per_s']:.0f} samples/s", flush=True)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    if not summary:  # nothing left to train: report the recorded summary
        path = os.path.join(out_dir, "summary.json")
        return json.load(open(path)) if os.path.exists(path) else {}
    summary = {"dataset": cfg.data.dataset, "epochs": cfg.train.epochs, "steps": step, **summary}
    atomic_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _banks(cfg: GanConfig) -> int:
    """Networks per layer in the checkpoint: one per class (``per_class``), else 0 (plain matrices)."""
    return N_CLASSES if cfg.per_class else 0


def _class_balanced_order(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """An epoch's sample order in which every run of ``10 * per_class`` indices holds
    ``per_class`` of each class (each class shuffled, cut to the smallest class's size)."""
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(N_CLASSES)]
    n = min(len(p) for p in pools) // per_class * per_class
    # (class, chunk, per_class) -> (chunk, class, per_class): chunk j holds per_class of each class
    blocks = np.stack([p[:n] for p in pools]).reshape(N_CLASSES, -1, per_class)
    return blocks.transpose(1, 0, 2).reshape(-1)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
