"""Look inside a trained Spiking-GAN: one sample through G and D in Brian2."""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np

from analysis.plots import plot_raster, plot_traces
from analysis.spikes import decision_ties
from models import brian
from models.coding import decide
from training.gan import d_verdict


def default_neurons(t_out: np.ndarray, t_max: int, n: int = 3) -> np.ndarray:
    """A few telling output neurons: the earliest, a median and a silent (or latest) one."""
    order = np.argsort(t_out, kind="stable")
    picks = [order[0], order[len(order) // 2], order[-1]]
    return np.array(sorted(set(int(p) for p in picks)))[:n]


def inspect_sample(gan, sample: int, out_dir: str, neurons: Optional[Sequence[int]] = None,
                   seed: int = 0, target: str = "numpy") -> Dict[str, str]:
    """Simulate sample ``sample`` (noise from ``seed``) through G then D with Brian2.

    Writes ``raster.png`` (noise, G layers, D layers; time in ms) and
    ``membrane.png`` (``StateMonitor`` traces of chosen G output neurons, i.e.
    pixels, and of D's two output neurons). Returns the paths.
    """
    gp, dp = gan.g_params, gan.d_params
    z = gan.g_input(np.random.default_rng(seed), sample + 1)[sample:]  # conditional: class sample % 10
    label = None if not gan.conditional else gan.default_labels(sample + 1)[sample:]
    g_w, d_w = gan.networks(0 if label is None else int(label[0]))  # per_class: that class's G and D
    n_g = len(g_w)
    g_out_layer = n_g
    if neurons is None:
        probe = brian.simulate(g_w, z, gp, target=target).times[-1][0]
        neurons = default_neurons(probe, gp.t_max)
    neurons = np.asarray(neurons, dtype=int)
    if neurons.size == 0 or neurons.min() < 0 or neurons.max() >= g_w[-1].shape[1]:
        raise ValueError(f"--neurons must be G output (pixel) indices in 0..{g_w[-1].shape[1] - 1}")
    g_res = brian.simulate(g_w, z, gp, target=target, record_v={g_out_layer: neurons})
    img_t = g_res.times[-1]
    d_res = brian.simulate(d_w, gan.d_input(img_t, label), dp, target=target, record_v={len(d_w): [0, 1]})
    os.makedirs(out_dir, exist_ok=True)
    names = (["noise + class" if gan.class_inputs else "noise"] + [f"G hidden {k}" for k in range(1, n_g)]
             + ["G output (pixels)"]
             + [f"D hidden {k}" for k in range(1, len(d_w))]
             + ["D output\n(0 real, 1 fake" + (", 2-11 class)" if gan.auxiliary else ")")])
    layers = [z[0]] + [t[0] for t in g_res.times] + [t[0] for t in d_res.times]
    paths = {"raster": os.path.join(out_dir, "raster.png"), "membrane": os.path.join(out_dir, "membrane.png")}
    verdict_t = d_verdict(d_res.times[-1][:1])  # an auxiliary-classifier D: not its class outputs
    winner, t_dec = (x[0] for x in decide(verdict_t, dp.t_max))
    marks = []
    if winner >= 0:
        verdict = ("tie (both outputs fire), counted as real" if decision_ties(verdict_t, dp.t_max)[0]
                   else ("real", "fake")[winner])
        marks.append((float(t_dec * dp.dt_ms), f"D decision at {t_dec * dp.dt_ms:g} ms: {verdict}"))
    plot_raster(layers, gp.t_max, gp.dt_ms, paths["raster"], names=names, marks=marks,
                title=f"sample {sample}: G then D" + (f" of class {label[0]}" if gan.per_class else "")
                + f", simulated by Brian2 ({target} target)")

    def spike_ms(t):
        return float(t * gp.dt_ms) if t < gp.t_max else float("nan")

    traces, ths, spikes, labels = [], [], [], []
    for j, nrn in enumerate(g_res.v_neurons[g_out_layer]):
        traces.append(g_res.v_trace[g_out_layer][0, j])
        ths.append(gp.thresholds[-1])
        spikes.append(spike_ms(img_t[0, nrn]))
        labels.append(f"G output neuron {nrn} (pixel row {nrn // 28}, col {nrn % 28})")
    for j, name in enumerate(("real", "fake")):
        traces.append(d_res.v_trace[len(d_w)][0, j])
        ths.append(dp.thresholds[-1])
        spikes.append(spike_ms(d_res.times[-1][0, j]))
        labels.append(f"D output neuron '{name}'")
    plot_traces(g_res.t_ms, traces, ths, spikes, labels, paths["membrane"],
                title=f"membrane potentials, sample {sample}" + (f" (class {label[0]})" if gan.per_class else "")
                + " (Brian2 StateMonitor)")
    return paths
