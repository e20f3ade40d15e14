"""The schedule search of the tuned ANN reference (issue 20): one training per trial, measured
along the way.

Each trial trains the same-size ANN GAN (:mod:`analysis.ann_gan`; G noise -> the dense spiking
pair's hidden sizes (``training.config.DENSE_RECIPE``) -> 784, D 784 -> the spiking D's hidden
sizes -> 1, the spiking config's digits) with one set of helps (R1 weight, weight average, learning
rate and its decay) for up to ``epochs`` epochs, and measures 1,000 samples (noise seed
:data:`analysis.evaluate.EVAL_SEED`) every ``every`` epochs, from G's last weights and, with a
weight average, from the average: the schedule (how long to train) is searched inside each
training. What is tuned on what: seed 0, the quality classifier of the data set and its real test
images, the same measures (:func:`analysis.quality.evaluate_samples`) as the spiking pair's tuning
(docs/experiments.md 1.1, 1.6), which chose its recipe by classifier-FID and coverage on seeds 0-4.
The chosen recipe is ``training.config.ANN_TUNED``; the other seeds are kept out of the search.

``python -m experiments.ann_tuning --out runs/ann_tuning TRIAL...`` writes one
``TRIAL.jsonl`` per trial (one line per measurement, appended as they come) and prints them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

import numpy as np

from analysis.ann_gan import train_ann_gan
from analysis.evaluate import EVAL_SEED, classifier_for
from analysis.quality import evaluate_samples
from training import config as config_mod
from training.config import DENSE_RECIPE, GanConfig
from training.data import load_dataset

#: Measures kept per measurement.
KEYS = ("classifier_fid", "class_coverage", "mean_confidence", "readable", "nearest_real",
        "isolated", "speckle", "within_class_diversity")
#: The trials: name -> (AnnGanConfig overrides, epochs). Every trial: Adam beta1 0.5, batch 64.
TRIALS: dict[str, dict[str, Any]] = {
    "r1_10_ema": {"r1": 10.0, "ema": 0.999, "epochs": 600},
    "r1_1_ema": {"r1": 1.0, "ema": 0.999, "epochs": 600},
    "r1_0_ema": {"r1": 0.0, "ema": 0.999, "epochs": 400},
    "r1_10_ema_decay": {"r1": 10.0, "ema": 0.999, "lr_decay": 0.995, "epochs": 400},
    "r1_10_ema_lr1e-4": {"r1": 10.0, "ema": 0.999, "lr": 1e-4, "epochs": 600},
}


def run_trial(name: str, out_dir: str, cfg: GanConfig, every: int = 50, n_samples: int = 1000,
              seed: int = 0) -> list[dict[str, Any]]:
    """Train trial ``name`` of :data:`TRIALS` and measure it every ``every`` epochs.

    Parameters
    ----------
    name : a key of :data:`TRIALS`
    out_dir : folder of ``name.jsonl`` (created)
    cfg : the spiking config whose sizes and data the ANN GAN takes
    every : epochs between measurements
    n_samples : samples per measurement
    seed : training seed

    Returns
    -------
    list of dicts: ``trial``, ``epoch``, ``weights`` ("last" or "ema"), ``seconds`` and :data:`KEYS`
    """
    if name not in TRIALS:
        raise ValueError(f"unknown trial {name!r}; choose from {', '.join(TRIALS)}")
    over = dict(TRIALS[name])
    base = dataclasses.asdict(config_mod.AnnGanConfig(batch_size=64))
    ann = config_mod.from_dict(config_mod.AnnGanConfig, {**base, **over}).resolved(cfg)
    data = load_dataset(cfg.data)
    clf = classifier_for(data, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.jsonl")
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def measure(epoch, gan):
        if epoch % every:
            return
        for weights in (("last", "ema") if gan.has_ema else ("last",)):
            images = gan.generate(n_samples, np.random.default_rng(EVAL_SEED), ema=weights == "ema")
            q = evaluate_samples(images, clf, data.test_images / 255.0, kid_subsets=2, seed=EVAL_SEED,
                                 train_images01=data.train_images / 255.0)
            row = {"trial": name, "epoch": epoch, "weights": weights,
                   "seconds": round(time.perf_counter() - t0, 1), **{k: q[k] for k in KEYS},
                   "readable_real": q["readable_real"], "isolated_real": q["isolated_real"]}
            rows.append(row)
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    train_ann_gan(data.train_images, noise_dim=cfg.generator.noise_dim, g_hidden=cfg.generator.hidden,
                  d_hidden=cfg.discriminator.hidden, epochs=ann.epochs, batch_size=ann.batch_size,
                  lr=ann.lr, beta1=ann.beta1, beta2=ann.beta2, seed=seed, r1=ann.r1, ema=ann.ema,
                  lr_decay=ann.lr_decay, callback=measure)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.ann_tuning", description=__doc__.split("\n\n")[0])
    p.add_argument("trials", nargs="+", choices=sorted(TRIALS))
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in args.trials:
        run_trial(name, args.out, config_mod.override(GanConfig(), DENSE_RECIPE), every=args.every, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
