"""Look inside a trained Spiking-GAN: one sample through G and D in Brian2."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from analysis.plots import DECISION_ORIGINS, plot_raster, plot_traces
from models import brian
from models.coding import decide
from models.spikes import decision_ties
from training.gan import N_CLASSES


def default_neurons(t_out: np.ndarray, t_max: int, n: int = 3) -> np.ndarray:
    """A few telling output neurons: the earliest, a median and a silent (or latest) one."""
    order = np.argsort(t_out, kind="stable")
    picks = [order[0], order[len(order) // 2], order[-1]]
    return np.array(sorted(set(int(p) for p in picks)))[:n]


def inspect_sample(gan, sample: int, out_dir: str, neurons: Sequence[int] | None = None,
                   seed: int = 0, target: str = "numpy") -> dict[str, str]:
    """Simulate sample ``sample`` (noise from ``seed``) through G then D with Brian2.

    Writes ``raster.png`` (noise, G layers, D layers; time in ms) and
    ``membrane.png`` (``StateMonitor`` traces of chosen G output neurons, i.e.
    pixels, and of D's two output neurons). Returns the paths.

    Every layer is drawn at the time its window opens (``gan.g.neuron.window_start``): the
    IF model's layers share one window of ``t_max`` steps; the ramp model's layer ``k`` fires
    in its own window, so G's noise, G's layers and D's layers are drawn one window after the
    other (D reads G's output window as its input).
    """
    gp, dp = gan.g_params, gan.d_params
    T = gp.t_max
    z = gan.g_input_at(np.random.default_rng(seed), sample)
    label = None if not gan.per_class else np.array([sample % N_CLASSES])  # default_labels' class
    index = 0 if label is None else int(label[0])  # per_class: that class's networks
    (g_w, g_th), (d_w, d_th) = gan.g.brian_layers(index), gan.d.brian_layers(index)
    neuron = gan.g.neuron
    n_g = len(g_w)
    g_out_layer = n_g
    if neurons is None:
        g_in, g_extra = gan.g.brian_inputs(z)
        probe = brian.simulate(g_w, g_in, gp, target=target, neuron=neuron, thresholds=g_th,
                               extra_inputs=g_extra).times[-1][0]
        neurons = default_neurons(probe, T)
    neurons = np.asarray(neurons, dtype=int)
    if neurons.size == 0 or neurons.min() < 0 or neurons.max() >= g_w[-1].shape[1]:
        raise ValueError(f"--neurons must be G output (pixel) indices in 0..{g_w[-1].shape[1] - 1}")
    g_in, g_extra = gan.g.brian_inputs(z)
    g_res = brian.simulate(g_w, g_in, gp, target=target, record_v={g_out_layer: neurons},
                           neuron=neuron, thresholds=g_th, extra_inputs=g_extra)
    img_t = g_res.times[-1]
    d_in, d_extra = gan.d.brian_inputs(img_t)
    d_res = brian.simulate(d_w, d_in, dp, target=target, record_v={len(d_w): [0, 1]},
                           neuron=gan.d.neuron, thresholds=d_th, extra_inputs=d_extra)
    os.makedirs(out_dir, exist_ok=True)
    names = (["noise"] + [f"G hidden {k}" for k in range(1, n_g)] + ["G output (pixels)"]
             + [f"D hidden {k}" for k in range(1, len(d_w))] + ["D output\n(0 real, 1 fake)"])
    layers = [z[0]] + [t[0] for t in g_res.times] + [t[0] for t in d_res.times]
    # layer j of the chain (noise = 0) opens its window at window_start(j); D's input window is G's output's
    start = neuron.window_start
    offsets = [start(j, T) for j in range(n_g + 1)] + [start(n_g + j, T) for j in range(1, len(d_w) + 1)]
    t_end = offsets[-1] + T
    layers = [np.where(t < T, t + o, t_end) for t, o in zip(layers, offsets)]
    paths = {"raster": os.path.join(out_dir, "raster.png"), "membrane": os.path.join(out_dir, "membrane.png")}
    verdict_t = d_res.times[-1][:1]
    winner, t_dec = (x[0] for x in decide(verdict_t, T))
    # the moments the decision times count from (DECISION_ORIGINS); the IF model's coincide at 0
    d_input_end, d_output_opens = offsets[n_g + 1] * dp.dt_ms, offsets[-1] * dp.dt_ms
    marks = [(float(d_input_end), "D's input window ends")] if d_input_end > 0 else []
    if d_output_opens > d_input_end:
        marks.append((float(d_output_opens), "D's output window opens"))
    if winner >= 0:
        verdict = ("tie (both outputs fire), counted as real" if decision_ties(verdict_t, T)[0]
                   else ("real", "fake")[winner])
        t_ms = t_dec * dp.dt_ms + d_output_opens
        when = f"{t_ms:g} ms" + (f" ({t_ms - d_input_end:g} ms after D's input window ends, {t_dec * dp.dt_ms:g} ms "
                                 f"into its output window)" if d_output_opens > 0 else "")
        marks.append((float(t_ms), f"D decision at {when}: {verdict}"))
    plot_raster(layers, t_end, gp.dt_ms, paths["raster"], names=names, marks=marks,
                xlabel=f"time (ms {DECISION_ORIGINS['simulation']})",
                title=f"sample {sample}: G then D" + (f" of class {label[0]}" if gan.per_class else "")
                + f", simulated by Brian2 ({target} target)")

    def spike_ms(t, offset):
        return float((t + offset) * gp.dt_ms) if t < T else float("nan")

    # one time axis for both runs: D's run starts at G's output window
    t_axis = np.arange(t_end) * gp.dt_ms
    d_shift = offsets[n_g]

    def on_axis(v, shift):
        out = np.full(t_end, np.nan)
        out[shift:shift + len(v)] = v[:t_end - shift]
        return out

    traces, ths, spikes, labels = [], [], [], []
    for j, nrn in enumerate(g_res.v_neurons[g_out_layer]):
        traces.append(on_axis(g_res.v_trace[g_out_layer][0, j], 0))
        ths.append(float(g_th[-1][nrn]))
        spikes.append(spike_ms(img_t[0, nrn], offsets[n_g]))
        labels.append(f"G output neuron {nrn} (pixel row {nrn // 28}, col {nrn % 28})")
    for j, name in enumerate(("real", "fake")):
        traces.append(on_axis(d_res.v_trace[len(d_w)][0, j], d_shift))
        ths.append(float(d_th[-1][j]))
        spikes.append(spike_ms(d_res.times[-1][0, j], offsets[-1]))
        labels.append(f"D output neuron '{name}'")
    plot_traces(t_axis, traces, ths, spikes, labels, paths["membrane"],
                title=f"membrane potentials, sample {sample}" + (f" (class {label[0]})" if gan.per_class else "")
                + " (Brian2 StateMonitor)")
    return paths
