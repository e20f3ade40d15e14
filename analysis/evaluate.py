"""Evaluate a trained Spiking-GAN run: inference time, spikes and sample quality, in one dict.

This is the one place where the measures of the study (defined below; the spike measures
come from :mod:`models.spikes`) are computed from a run folder; ``spiking-gan evaluate``, the
loss comparison and the sweeps all call :func:`evaluate_run`.

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
    D's verdict on held-out real images and on fresh samples (no output spike = wrong; when
    both output neurons fire first at the same step, the verdict is "real", as in training).
``d_tie_rate``
    Fraction of D's decisions (real and fake images) in which both output neurons fired first
    at the same step: a high value means the verdicts above are mostly tie-breaks.
``acs_*``, ``clock_updates_*``, ``event_updates_*``, ``energy_*_pj``, ``ann_energy_total_pj``
    Operation counts and energy per sample (:mod:`analysis.energy`, the 45 nm convention and
    what it leaves out): of G, of D, and of D up to its decision; ``energy_total_pj`` is G's
    plus D's up to the decision, ``ann_energy_total_pj`` the same-size ANN's G and D
    (:func:`energy_tables` has them per layer).
``label_accuracy``
    Per-class GAN only: how often the quality classifier sees the class G was asked for.

For the windowed ramp model (``neuron.model = "ramp"``) every layer fires in its own
window of ``t_max`` steps: spike times are counted from the start of each layer's window,
and ``decision_latency_ms`` adds the windows of D's hidden layers: D's latency counted from
the end of its input window (once every input spike has arrived).
Quality measures (``classifier_fid``, ``kid``, ``class_coverage``, ``mean_confidence``,
``inception_score``, ``within_class_diversity``, ``speckle``): :func:`analysis.quality.evaluate_samples`
on ``n_samples`` samples against the real test images; and the three a person reads a sample
grid by, each next to the real test images' own value:
``readable`` (``readable_real``)
    The share of samples the quality classifier reads with confidence >= 0.9
    (:func:`analysis.quality.readable_share`).
``nearest_real``
    The mean pixel distance of each sample to its nearest training image, divided by the same
    for real test images (real digits = 1; :func:`analysis.quality.nearest_real_ratio`).
``isolated`` (``isolated_real``)
    Lit pixels (> 0.5) with no lit 8-neighbour, per lit pixel (:func:`analysis.speckle.isolated`;
    ``speckle`` and ``speckle_real`` count stroke ends, one lit neighbour, too).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis import energy, quality
from models.coding import decide, decode_times
from models.ramp import ConvMap
from models.resources import check_memory
from models.spikes import completion_times, decision_ties, last_spike_times, sparsity, spikes_before
from training.data import load_dataset
from training.gan import Gan
from training.trainer import load_gan

#: Noise seed of the evaluation samples (separate from any training stream).
EVAL_SEED = 12345


@dataclass
class Activity:
    """Spike times (steps, ``t_max`` = no spike) of G and D on one evaluation set.

    Attributes
    ----------
    z : int array (n, noise_dim)
        G's input: the TTFS-encoded noise (a per-class GAN makes the classes
        ``0, 1, ..., 9, 0, ...``).
    g : list of int arrays (n, n_k)
        G's layers (hidden..., output); ``g[-1]`` (n, 784) are the generated images.
    d_real, d_fake : list of int arrays
        D's layers (hidden..., output (n, 2): real, fake) on real test images and on ``g[-1]``.
    real_in : int array (n_real, 784)
        The TTFS-encoded real test images.
    t_max : int
    dt_ms : float
    d_window_starts : list of int, or None
        Step at which each of D's layers opens its window, counted from the end of D's input
        window (:meth:`training.gan.Gan.d_window_starts`); None: one shared window (IF model).
    """

    z: np.ndarray
    g: list[np.ndarray]
    d_real: list[np.ndarray]
    d_fake: list[np.ndarray]
    real_in: np.ndarray
    t_max: int
    dt_ms: float
    d_window_starts: list[int] | None = None

    @property
    def d_all(self) -> list[np.ndarray]:
        """D's layers on the real images followed by the fake ones (n_real + n, n_k)."""
        return [np.concatenate([a, b]) for a, b in zip(self.d_real, self.d_fake)]


def check_evaluation_size(cfg, n_samples: int, option: str = "--n") -> None:
    """Refuse an evaluation of ``n_samples`` that the memory cannot hold: the spike times of
    G and of D (on the real and the generated images) of every sample are held at once, with
    the quality measures' features (the real side is at most the data set's test images).

    Raises
    ------
    models.resources.SizeError
    """
    s = Gan.sizes(cfg)
    check_memory(4 * 8 * n_samples * (sum(s["g"]) + 2 * sum(s["d"])), f"{option} {n_samples}",
                 f"evaluating {n_samples} samples")


def simulate_activity(gan, data, n_samples: int = 1000, seed: int = EVAL_SEED) -> Activity:
    """Run G on ``n_samples`` noise samples, and D on them and on as many real test images.

    Parameters
    ----------
    gan : training.gan.Gan
    data : training.data.Dataset (its test images are the real reference)
    n_samples : int
    seed : int
        Noise seed.

    Returns
    -------
    Activity
    """
    gp, dp = gan.g_params, gan.d_params
    if gp.t_max != dp.t_max:
        raise ValueError("G and D must share t_max")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    fake_y, real_y = gan.default_labels(n_samples), data.test_labels[:n_samples]  # None if unconditional
    z = gan.g_input(np.random.default_rng(seed), n_samples)
    g_times = gan.g_times(z, fake_y)  # per class: balanced classes
    real_t = gan.encode_real(data.test_images[:n_samples])
    d_real = gan.d_times(real_t, real_y)
    d_fake = gan.d_times(g_times[-1], fake_y)
    return Activity(z, list(g_times), list(d_real), list(d_fake), real_t, int(gp.t_max), float(gp.dt_ms),
                    gan.d_window_starts())


def activity_measures(act: Activity) -> dict[str, Any]:
    """The inference-time and spike measures of the module docstring, from an :class:`Activity`."""
    T, dt = act.t_max, act.dt_ms
    fake_t = act.g[-1]
    v_real, v_fake = act.d_real[-1], act.d_fake[-1]
    win_real, td_real = decide(v_real, T)
    win_fake, td_fake = decide(v_fake, T)
    td = np.concatenate([td_real, td_fake])
    d_all = act.d_all
    sp_g, sp_d = sparsity(act.g, T), sparsity(d_all, T)
    spikes_g = float(sum(sp_g["spikes_per_sample"]))
    spikes_d = float(sum(sp_d["spikes_per_sample"]))
    return {
        "decision_time_ms": float(td.mean() * dt),
        "decision_time_real_ms": float(td_real.mean() * dt),
        "decision_time_fake_ms": float(td_fake.mean() * dt),
        "decision_latency_ms": float((td.mean() + (act.d_window_starts or [0])[-1]) * dt),
        "no_decision_rate": float((td >= T).mean()),
        "d_accuracy_real": float((win_real == 0).mean()),
        "d_accuracy_fake": float((win_fake == 1).mean()),
        "d_tie_rate": float(np.concatenate([decision_ties(v_real, T), decision_ties(v_fake, T)]).mean()),
        "g_completion_ms": float(completion_times(fake_t, T).mean() * dt),
        "g_last_spike_ms": float(last_spike_times(fake_t, T).mean() * dt),
        "g_pixels_on": float((fake_t < T).mean()),
        "spikes_g": spikes_g,
        "spikes_d": spikes_d,
        "spikes_total": spikes_g + spikes_d,
        "spikes_d_to_decision": float(spikes_before(d_all, td, T, act.d_window_starts).mean()),
        "g_spikes_per_layer": sp_g["spikes_per_sample"],
        "d_spikes_per_layer": sp_d["spikes_per_sample"],
        "g_silent_fraction": sp_g["silent_fraction"],
        "d_silent_fraction": sp_d["silent_fraction"],
        "t_max": int(T),
        "dt_ms": float(dt),
    }


def evaluate_gan(gan, data, n_samples: int = 1000, seed: int = EVAL_SEED,
                 classifier: quality.Classifier | None = None,
                 activity: Activity | None = None) -> dict[str, Any]:
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
    activity : Activity, optional
        The result of :func:`simulate_activity` for these ``n_samples`` and ``seed``, if
        already computed (saves the forward passes).

    Returns
    -------
    dict of JSON-serialisable numbers
    """
    act = activity if activity is not None else simulate_activity(gan, data, n_samples, seed)
    out = activity_measures(act)
    out.update(energy_measures(energy_tables(gan, act)))
    if classifier is not None:
        images = decode_times(act.g[-1], act.t_max).reshape(-1, 28, 28)
        out.update(quality.evaluate_samples(images, classifier, data.test_images / 255.0, seed=seed,
                                            train_images01=data.train_images / 255.0))
        if gan.per_class:  # does the quality classifier see the class G was asked for?
            out["label_accuracy"] = classifier.accuracy(images, gan.default_labels(len(images)))
    return out


def classifier_file(dataset: str) -> str:
    """File name of the cached quality classifier of a data set (``Dataset.name``).

    ``quality_classifier.npz`` for the embedded digits (the name of every earlier run's cache),
    ``quality_classifier_<dataset>.npz`` for the others, so that runs of several data sets can
    share one cache folder without retraining each other's classifier.
    """
    return "quality_classifier.npz" if dataset == "digits" else f"quality_classifier_{dataset}.npz"


def layer_inputs(net, t_in: np.ndarray, times: list[np.ndarray]) -> list[np.ndarray]:
    """The input spike times (batch, n_in) of every layer of ``net`` given its data input ``t_in``
    and the spike times ``times`` of its layers: the data with any bias neuron, then each layer's
    times with the extra input neurons of the next (:meth:`training.networks.Network.brian_inputs`)."""
    first, extra = net.brian_inputs(t_in)
    below = [first] + list(times[:-1])
    return [np.concatenate([t, extra[k + 1]], axis=1) if k + 1 in extra else t for k, t in enumerate(below)]


def network_specs(net) -> list[energy.LayerSpec]:
    """:func:`analysis.energy.network_specs` of a network: the shapes of what Brian2 simulates of it
    (:meth:`training.networks.Network.brian_layers`; a convolutional layer's fan-outs from its
    index map) and its windows."""
    weights = net.brian_layers()[0]
    shapes = [w.shape[-2:] for w in weights]
    fan_outs = [w.fan_out() if isinstance(w, ConvMap) else None for w in weights]
    T = net.params.t_max
    return energy.network_specs(shapes, [net.neuron.window_start(k, T) for k in range(len(shapes) + 1)], fan_outs)


def energy_tables(gan, act: Activity) -> dict[str, list[dict[str, float]]]:
    """Per-layer operation counts and energies (:mod:`analysis.energy`), means per sample.

    Returns
    -------
    dict with ``"G"`` (one generated sample), ``"D"`` (one judged image, real and generated
    together, the whole run) and ``"D to decision"`` (the same up to D's first output spike):
    lists of :func:`analysis.energy.layer_summary` dicts, one per layer, each also holding
    ``n_in`` and ``n_out``
    """
    T = act.t_max
    g_specs, d_specs = network_specs(gan.g), network_specs(gan.d)
    g_in = layer_inputs(gan.g, act.z, act.g)
    d_in = [np.concatenate([a, b]) for a, b in zip(layer_inputs(gan.d, act.real_in, act.d_real),
                                                   layer_inputs(gan.d, act.g[-1], act.d_fake))]
    t_dec = decide(act.d_all[-1], T)[1] + d_specs[-1].start  # on D's clock
    tables = {"G": energy.network_table(g_in, g_specs, T), "D": energy.network_table(d_in, d_specs, T),
              "D to decision": energy.network_table(d_in, d_specs, T, until=t_dec)}
    for name, specs in (("G", g_specs), ("D", d_specs), ("D to decision", d_specs)):
        for row, s in zip(tables[name], specs):
            row.update(n_in=s.n_in, n_out=s.n_out)
    return tables


def energy_measures(tables: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """The totals of :func:`energy_tables` as flat measures (per sample; ``energy_total_pj``: G
    then D up to its decision, ``ann_energy_total_pj``: the same-size ANN's G and D)."""
    tot = {name: energy.totals(rows) for name, rows in tables.items()}
    g, d, dd = tot["G"], tot["D"], tot["D to decision"]
    out = {"acs_g": g["acs"], "acs_d": d["acs"], "acs_d_to_decision": dd["acs"],
           "clock_updates_g": g["clock_updates"], "clock_updates_d_to_decision": dd["clock_updates"],
           "event_updates_g": g["event_updates"], "event_updates_d_to_decision": dd["event_updates"],
           "energy_g_pj": g["energy_pj"], "energy_d_pj": d["energy_pj"],
           "energy_d_to_decision_pj": dd["energy_pj"], "energy_total_pj": g["energy_pj"] + dd["energy_pj"],
           "ann_energy_total_pj": g["ann_energy_pj"] + d["ann_energy_pj"]}
    out["energy_ratio_snn_ann"] = out["energy_total_pj"] / out["ann_energy_total_pj"]
    return out


def classifier_for(data, cache_dir: str | None) -> quality.Classifier:
    """The quality classifier of ``data``'s data set, trained on its training images and cached as
    ``cache_dir/`` :func:`classifier_file` (retrained when the cached one was trained on other images)."""
    path = os.path.join(cache_dir, classifier_file(data.name)) if cache_dir else None
    return quality.get_classifier(path, data)


def evaluate_run(run_dir: str, n_samples: int = 1000, seed: int = EVAL_SEED,
                 with_quality: bool = True, classifier_cache: str | None = None,
                 return_activity: bool = False):
    """:func:`evaluate_gan` on the last checkpoint of a run folder.

    Parameters
    ----------
    run_dir : a run folder of ``spiking-gan train``
    n_samples, seed : see :func:`evaluate_gan`
    with_quality : compute the classifier-based quality measures
    classifier_cache : folder of the cached quality classifier (default: the run folder)
    return_activity : also return the :class:`Activity` the measures were computed from

    Returns
    -------
    dict, also carrying ``dataset`` (the data set of the run, whose test images are the real
    reference and whose classifier measures quality), ``epoch``, ``loss``, ``loss_variant`` and
    ``loss_alpha`` of the checkpoint; with ``return_activity`` the tuple ``(dict, Activity)``
    """
    gan, cfg, meta = load_gan(run_dir)
    data = load_dataset(cfg.data)
    clf = classifier_for(data, classifier_cache or run_dir) if with_quality else None
    act = simulate_activity(gan, data, n_samples, seed)
    out = evaluate_gan(gan, data, n_samples, seed, clf, activity=act)
    out.update({"dataset": data.name, "epoch": int(meta["epoch"]), "loss": cfg.loss.kind,
                "loss_variant": cfg.loss.variant, "loss_alpha": float(cfg.loss.alpha)})
    return (out, act) if return_activity else out
