"""Evaluate a trained Spiking-GAN run: inference time, spikes and sample quality, in one dict.

This is the one place where the measures of the study (``../shared/DESIGN.md`` section 6) are
computed from a run folder; ``spiking-gan evaluate``, the loss comparison and the sweeps all
call :func:`evaluate_run`.

Definitions (all means are over samples)
----------------------------------------
``decision_time_ms``
    D's inference time: the time of its first output spike (``t_max`` if none), in ms, over
    the real test images and as many generated images together; ``decision_time_real_ms`` and
    ``decision_time_fake_ms`` split it.
``g_completion_ms``
    G's inference time: the time by which every output pixel is decided (its last output
    spike, or ``t_max`` when a pixel stays silent, which is the usual case: black pixels).
``g_last_spike_ms``
    The last output spike of G that did occur (the latest bright pixel).
``spikes_g``
    Spikes of G (hidden + output layers) per generated sample.
``spikes_d``
    Spikes of D (hidden + output layers) per image it judges (real and fake together).
``spikes_total``
    ``spikes_g + spikes_d``: one generated sample, then one D decision.
``spikes_d_to_decision``
    D spikes at or before D's decision time (what an event-driven chip must process before
    the verdict is known).
``d_accuracy_real``, ``d_accuracy_fake``
    D's verdict on held-out real images and on fresh samples (no output spike = wrong).
Quality measures (``classifier_fid``, ``kid``, ``class_coverage``, ``mean_confidence``,
``inception_score``): :func:`analysis.quality.evaluate_samples` on ``n_samples`` samples
against the real test images.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from analysis import quality
from analysis.spikes import completion_times, decision_times, sparsity, spikes_before
from models.coding import decode_times, encode_images, sample_noise_times
from models.kernel import forward
from training.data import load_dataset

#: Noise seed of the evaluation samples (separate from any training stream).
EVAL_SEED = 12345


def evaluate_gan(gan, data, n_samples: int = 1000, seed: int = EVAL_SEED,
                 classifier: Optional[quality.Classifier] = None) -> Dict[str, Any]:
    """All measures of a trained GAN on a data set (see module docstring).

    Parameters
    ----------
    gan : training.gan.Gan
    data : training.data.Dataset (its test images are the real reference)
    n_samples : int
        Generated samples (and at most this many real test images).
    seed : int
        Noise seed.
    classifier : analysis.quality.Classifier, optional
        The quality classifier; without it the quality keys are left out.

    Returns
    -------
    dict of JSON-serialisable numbers
    """
    gp, dp = gan.g_params, gan.d_params
    z = sample_noise_times(np.random.default_rng(seed), n_samples, gan.noise_dim, gp.t_max)
    g_times = forward(gan.g, z, gp)
    fake_t = g_times[-1]
    real_t = encode_images(data.test_images[:n_samples], dp.t_max)
    if gp.t_max != dp.t_max:
        raise ValueError("G and D must share t_max")
    d_real = forward(gan.d, real_t, dp)
    d_fake = forward(gan.d, fake_t, dp)
    td_real, win_real = decision_times(d_real[-1], dp.t_max)
    td_fake, win_fake = decision_times(d_fake[-1], dp.t_max)
    td = np.concatenate([td_real, td_fake])
    d_all = [np.concatenate([a, b]) for a, b in zip(d_real, d_fake)]
    sp_g, sp_d = sparsity(g_times, gp.t_max), sparsity(d_all, dp.t_max)
    spikes_g = float(sum(sp_g["spikes_per_sample"]))
    spikes_d = float(sum(sp_d["spikes_per_sample"]))
    fired = fake_t < gp.t_max
    out: Dict[str, Any] = {
        "decision_time_ms": float(td.mean() * dp.dt_ms),
        "decision_time_real_ms": float(td_real.mean() * dp.dt_ms),
        "decision_time_fake_ms": float(td_fake.mean() * dp.dt_ms),
        "no_decision_rate": float((td >= dp.t_max).mean()),
        "d_accuracy_real": float((win_real == 0).mean()),
        "d_accuracy_fake": float((win_fake == 1).mean()),
        "g_completion_ms": float(completion_times(fake_t, gp.t_max).mean() * gp.dt_ms),
        "g_last_spike_ms": float(np.where(fired, fake_t, 0).max(axis=1).mean() * gp.dt_ms),
        "g_pixels_on": float(fired.mean()),
        "spikes_g": spikes_g,
        "spikes_d": spikes_d,
        "spikes_total": spikes_g + spikes_d,
        "spikes_d_to_decision": float(spikes_before(d_all, td).mean()),
        "g_spikes_per_layer": sp_g["spikes_per_sample"],
        "d_spikes_per_layer": sp_d["spikes_per_sample"],
        "g_silent_fraction": sp_g["silent_fraction"],
        "d_silent_fraction": sp_d["silent_fraction"],
        "t_max": int(gp.t_max),
        "dt_ms": float(gp.dt_ms),
    }
    if classifier is not None:
        images = decode_times(fake_t, gp.t_max).reshape(-1, 28, 28)
        out.update(quality.evaluate_samples(images, classifier, data.test_images / 255.0, seed=seed))
    return out


def classifier_for(data, cache_dir: Optional[str]) -> quality.Classifier:
    """The quality classifier for ``data``, cached as ``cache_dir/quality_classifier.npz``."""
    path = os.path.join(cache_dir, "quality_classifier.npz") if cache_dir else None
    return quality.get_classifier(path, data)


def evaluate_run(run_dir: str, n_samples: int = 1000, seed: int = EVAL_SEED,
                 with_quality: bool = True, classifier_cache: Optional[str] = None) -> Dict[str, Any]:
    """:func:`evaluate_gan` on the last checkpoint of a run folder.

    Parameters
    ----------
    run_dir : a run folder of ``spiking-gan train``
    n_samples, seed : see :func:`evaluate_gan`
    with_quality : compute the classifier-based quality measures
    classifier_cache : folder of the cached quality classifier (default: the run folder)

    Returns
    -------
    dict, also carrying ``epoch`` and ``loss`` of the checkpoint
    """
    from training.trainer import load_gan

    gan, cfg, meta = load_gan(run_dir)
    data = load_dataset(cfg.data)
    clf = classifier_for(data, classifier_cache or run_dir) if with_quality else None
    out = evaluate_gan(gan, data, n_samples, seed, clf)
    out.update({"epoch": int(meta["epoch"]), "loss": cfg.loss.kind})
    return out
