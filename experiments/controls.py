"""Where does the single pair's collapse come from? Two hybrid controls and the error cosine.

Three pairs are trained on the same digits, seed and budget (epochs, batch size):

``spiking``
    The Spiking-GAN of the config (spiking G and spiking D, its learning rule).
``spiking_g_ann_d``
    The config's spiking G trained against a non-spiking D (the ANN GAN's D of
    :mod:`analysis.ann_gan`: leaky-ReLU MLP, one logit, non-saturating loss, Adam 2e-4).
    D's gradient on the pixel intensities is handed to G as its pixel error
    (``Gan.d.error_from_intensity``).
``ann_g_spiking_d``
    A non-spiking G (the ANN GAN's G: leaky-ReLU MLP, sigmoid pixels, Adam 2e-4) trained
    through the config's spiking D; its pixels are TTFS-encoded for D, and D's pixel error
    (:func:`training.gan.pixel_error`) is its gradient on the intensities.
``ann``
    Both halves non-spiking (the same-size ANN GAN, same loop): the reference.

No dead-neuron re-initialisation in any of them. If the spiking G collapses against an ANN D,
G's rule is the culprit; if the ANN G collapses through the spiking D, D's error is. For each
pair, every epoch records the mean pairwise cosine of G's pixel error across a batch (:func:`training.gan.error_cosine`:
near 1 = D tells every fake the same thing); the end of training records the sample
quality and the within-class diversity (:mod:`analysis.diversity`).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis import ann_gan
from analysis.evaluate import classifier_for
from analysis.plots import plot_controls, plot_grid
from analysis.quality import evaluate_samples
from models.coding import decode_times, encode_images, encode_values
from models.errors import SpikingGanError
from training import config as config_mod
from training.config import DENSE_RECIPE, GanConfig
from training.data import load_dataset
from training.gan import N_PIXELS, Gan, d_step, error_cosine, g_update, gan_step, pixel_error
from training.networks import convolutional
from training.runinfo import atomic_json, holds_folder, run_record

CONTROLS = ("spiking", "spiking_g_ann_d", "ann_g_spiking_d", "ann")
#: The ANN half's optimiser (the ANN GAN's: DCGAN's Adam).
ANN_LR, ANN_BETA1, ANN_BETA2 = 2e-4, 0.5, 0.999


def train_control(kind: str, cfg: GanConfig, data, progress: bool = False) -> dict[str, Any]:
    """Train one pair of :data:`CONTROLS`; returns its per-epoch error cosine and final samples.

    Returns
    -------
    dict with ``error_cosine`` (list, one mean per epoch) and ``images`` (float32 (1000, 28, 28))
    """
    if kind not in CONTROLS:
        raise ValueError(f"unknown control {kind!r}; choose one of {', '.join(CONTROLS)}")
    rng = np.random.default_rng(cfg.seed)
    gan = Gan.init(cfg, rng)
    T = gan.g_params.t_max
    # the IF model's real images are delayed by G's latency (Gan.encode_real); an ANN G has none
    real_t = encode_images(data.train_images, T) if kind == "ann_g_spiking_d" else gan.encode_real(data.train_images)
    real01 = (data.train_images / 255.0).reshape(len(real_t), -1).astype(np.float32)
    B = cfg.train.batch_size
    # the ANN halves see the data only (no bias neuron of the spiking networks, s4nn.*_bias_time)
    g_sizes = [cfg.generator.noise_dim, *cfg.generator.hidden, N_PIXELS]
    d_sizes = [N_PIXELS, *cfg.discriminator.hidden, 1]
    ann_d = ann_gan.Mlp.init(rng, d_sizes) if kind in ("spiking_g_ann_d", "ann") else None
    ann_g = ann_gan.Mlp.init(rng, g_sizes) if kind in ("ann_g_spiking_d", "ann") else None
    opt = (ANN_LR, ANN_BETA1, ANN_BETA2)
    cosines: list[float] = []
    epochs = range(cfg.train.epochs)
    if progress:
        from tqdm import tqdm
        epochs = tqdm(epochs, desc=kind, unit="epoch")
    for _ in epochs:
        order = rng.permutation(len(real_t))
        cos = []
        for s in range(0, len(order) - B + 1, B):
            idx = order[s:s + B]
            if kind == "spiking":
                cos.append(gan_step(gan, cfg, [real_t[idx]], rng)["g_error_cosine"])
            elif kind == "spiking_g_ann_d":
                ann_gan.d_step(ann_d, real01[idx], decode_times(gan.generate_times(rng, B).output, T), *opt)
                g_trace = gan.generate_times(rng, B)
                grad01 = ann_gan.pixel_grad(ann_d, decode_times(g_trace.output, T))[0]
                g_update(gan, g_trace, gan.d.error_from_intensity(grad01))
                cos.append(error_cosine(grad01))
            elif kind == "ann":
                z = ann_gan.centre_noise(rng.random((B, cfg.generator.noise_dim), dtype=np.float32))
                ann_gan.d_step(ann_d, real01[idx], ann_gan.sigmoid(ann_g.forward(z)[0]), *opt)
                z = ann_gan.centre_noise(rng.random((B, cfg.generator.noise_dim), dtype=np.float32))
                logit, inputs = ann_g.forward(z)
                fake01 = ann_gan.sigmoid(logit)
                grad01 = ann_gan.pixel_grad(ann_d, fake01)[0]
                ann_gan.g_step(ann_g, inputs, fake01, grad01, *opt)
                cos.append(error_cosine(grad01))
            else:
                z = ann_gan.centre_noise(rng.random((B, cfg.generator.noise_dim), dtype=np.float32))
                fake01 = ann_gan.sigmoid(ann_g.forward(z)[0])
                d_step(gan, cfg, real_t[idx], encode_values(fake01, T))
                z = ann_gan.centre_noise(rng.random((B, cfg.generator.noise_dim), dtype=np.float32))
                logit, inputs = ann_g.forward(z)
                fake01 = ann_gan.sigmoid(logit)
                _, _, err = pixel_error(gan, cfg, encode_values(fake01, T))
                grad01 = gan.d.intensity_gradient(err) / np.float32(B)
                ann_gan.g_step(ann_g, inputs, fake01, grad01, *opt)
                cos.append(error_cosine(grad01))
        cosines.append(float(np.nanmean(cos)))
    eval_rng = np.random.default_rng([cfg.seed, 99])
    if ann_g is not None:
        z = ann_gan.centre_noise(eval_rng.random((1000, cfg.generator.noise_dim), dtype=np.float32))
        images = ann_gan.sigmoid(ann_g.forward(z)[0]).reshape(-1, 28, 28)
    else:
        images = gan.generate(eval_rng, 1000)[0]
    return {"error_cosine": cosines, "images": images}


@holds_folder("controls")
def run_controls(cfg: GanConfig, out_dir: str, kinds: Sequence[str] = CONTROLS,
                 progress: bool = True, classifier_cache: str | None = None) -> dict[str, Any]:
    """Train every control of ``kinds`` and write ``controls.json``, ``controls.png`` and one
    sample grid per control into ``out_dir`` (held by this process while it runs,
    :func:`training.runinfo.folder_lock`); returns the results (without the images)."""
    if convolutional(cfg):
        raise SpikingGanError("experiments.controls: the hybrid controls swap dense halves (MLP G and "
                              "D); give a dense pair (generator.conv = [], e.g. configs/dense_single.toml)")
    record = run_record(cfg.seed)  # the commit and its state now, before anything is written
    os.makedirs(out_dir, exist_ok=True)
    data = load_dataset(cfg.data)
    clf = classifier_for(data, classifier_cache or out_dir)
    results: dict[str, Any] = {}
    for kind in kinds:
        res = train_control(kind, cfg, data, progress)
        quality = evaluate_samples(res["images"], clf, data.test_images / 255.0)
        results[kind] = {"error_cosine": res["error_cosine"], **quality}
        plot_grid(res["images"][:64], os.path.join(out_dir, f"{kind}.png"),
                  title=f"{kind}: classifier-FID {quality['classifier_fid']:.0f}, "
                        f"diversity {quality['within_class_diversity']:.2f}")
    summary = {"dataset": data.name, "model": cfg.neuron.model, "epochs": cfg.train.epochs, "seed": cfg.seed,
               "controls": results, "config": config_mod.to_dict(cfg), "record": record}
    atomic_json(os.path.join(out_dir, "controls.json"), summary)
    plot_controls(results, os.path.join(out_dir, "controls.png"),
                  title=f"{cfg.neuron.model} model, {cfg.train.epochs} epochs, seed {cfg.seed}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - thin wrapper
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--config", help="GAN config of the spiking half of every control (a dense pair); "
                    "none: the dense pair, configs/dense_single.toml")
    ap.add_argument("--out", default="runs/controls", help="output folder")
    ap.add_argument("--epochs", type=int, help="override train.epochs")
    args = ap.parse_args(argv)
    over = {"train.epochs": args.epochs} if args.epochs else {}
    try:
        cfg = (config_mod.load(args.config, GanConfig, over) if args.config
               else config_mod.override(config_mod.override(GanConfig(), DENSE_RECIPE), over))
        summary = run_controls(cfg, args.out)
    except SpikingGanError as exc:  # a user error: one line, as the spiking-gan command does
        print(f"experiments.controls: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: {m: v[m] for m in ("classifier_fid", "class_coverage", "within_class_diversity")}
                      for k, v in summary["controls"].items()}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
