"""Matplotlib figures (PNG) of spiking activity. Every axis carries units.

Every figure of the project is a :class:`matplotlib.figure.Figure` made by
:func:`new_figure` (no pyplot global state) and written by :func:`save_figure`, the one
figure writer: atomically, in the format its file name's suffix names.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.stats import mean_std
from models.files import atomic_write
from models.spikes import firing_probability, sparsity

if TYPE_CHECKING:  # matplotlib itself is imported on first use (it takes ~1 s)
    from matplotlib.figure import Figure


def new_figure(**kwargs) -> Figure:
    """A new :class:`matplotlib.figure.Figure` (``kwargs``: its ``figsize``, ``layout``, ...).

    The figure belongs to no pyplot state: nothing has to be closed, and it is freed with
    its last reference.
    """
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def save_figure(fig: Figure, path: str, dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` atomically; returns ``path``.

    The figure is rendered in memory, in the format named by the suffix of ``path``
    (``.png``, ``.pdf``, ``.svg``, ``.jpg``; PNG when there is none), then written by
    :func:`models.files.atomic_write`: a temporary file in the same folder, ``fsync``,
    ``os.replace``, with the user's permissions. A failure while rendering writes nothing; one
    while writing removes the temporary file. A reader never sees half a figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str
        Target file; its folder must exist.
    dpi : int
        Resolution of raster formats.
    """
    fmt = os.path.splitext(path)[1][1:].lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def _finish(fig: Figure, path: str, title: str = "", dpi: int = 120, title_size: float | None = None,
            **layout) -> None:
    """Title (if any), tight layout (``layout``: its ``pad``, ``rect``), then
    :func:`save_figure` to ``path``: every figure of this module ends here, title or not."""
    if title:
        fig.suptitle(title, **({"fontsize": title_size} if title_size else {}))
    fig.tight_layout(**layout)
    save_figure(fig, path, dpi=dpi)


#: Where each decision time counts from: the same words in every metric's description, table
#: and plot (analysis/evaluate.py defines the measures). The IF model's layers share one window,
#: so for it the three origins coincide; the ramp model's layers fire one window after another.
DECISION_ORIGINS = {
    "decision_time_ms": "from the opening of D's output window",
    "decision_latency_ms": "from the end of D's input window",
    "simulation": "from the start of the simulation (G's noise window)",
}

def plot_raster(times: Sequence[np.ndarray], t_max: int, dt_ms: float, path: str,
                names: Sequence[str] | None = None, title: str = "",
                marks: Sequence[tuple[float, str]] = (), xlabel: str = "time (ms)") -> None:
    """Spike raster of one sample across layers, stacked top (input) to bottom.

    Parameters
    ----------
    times : list of int arrays (n_k,)
        Spike time (steps) of each neuron of each layer; ``t_max`` = no spike.
    t_max : int
    dt_ms : float
    path : str
        PNG file to write.
    names : layer names (default "layer k")
    title : figure title
    marks : (time in ms, label) pairs drawn as dashed vertical lines across all panels
        (e.g. D's decision)
    xlabel : label of the time axis (say where the time counts from)
    """
    n = len(times)
    names = list(names) if names is not None else [f"layer {k}" for k in range(n)]
    heights = [max(0.8, min(2.5, len(t) / 200)) for t in times]
    fig = new_figure(figsize=(8, 1.0 + 1.2 * sum(heights)))
    axes = fig.subplots(n, 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, t, name in zip(axes[:, 0], times, names):
        t = np.asarray(t)
        idx = np.flatnonzero(t < t_max)
        small = len(t) <= 10
        ax.scatter(t[idx] * dt_ms, idx, s=2 if len(t) > 100 else (120 if small else 8),
                   marker="|" if len(t) <= 100 else ".", color="k", linewidths=2 if small else 1, zorder=3)
        ax.set_ylim(-0.5, len(t) - 0.5)
        if small:
            ax.set_yticks(range(len(t)))
        ax.set_ylabel(f"{name}\nneuron")
        ax.text(1.0, 1.0, f"{idx.size}/{len(t)} spiked", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8)
        for k, (t_ms, label) in enumerate(marks):
            ax.axvline(t_ms, color=f"C{3 + k}", ls="--", lw=1, alpha=0.6, zorder=1, label=label)
    if marks:
        axes[0, 0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False,
                          ncol=1 if len(marks) > 2 else len(marks))
    axes[-1, 0].set_xlim(0, t_max * dt_ms)
    axes[-1, 0].set_xlabel(xlabel)
    _finish(fig, path, title)


def plot_grid(images: np.ndarray, path: str, title: str = "", ncols: int = 8) -> None:
    """A grid of images (n, 28, 28) in [0, 1], white on black, as a PNG."""
    canvas, nrows, ncols = grid_canvas(images, ncols)
    fig = new_figure(figsize=(ncols * 0.6 + 0.4, nrows * 0.6 + (0.6 if title else 0.3)))
    ax = fig.subplots()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    _finish(fig, path, dpi=100, pad=0.2)


def grid_canvas(images: np.ndarray, ncols: int = 8):
    """Images (n, 28, 28) tiled into one array with 1-pixel gaps: (canvas, nrows, ncols)."""
    n = len(images)
    ncols = min(ncols, max(n, 1))
    nrows = int(np.ceil(n / ncols)) if n else 1
    canvas = np.full((nrows * 29 + 1, ncols * 29 + 1), 0.3, dtype=np.float32)   # grey gaps
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[1 + r * 29:1 + r * 29 + 28, 1 + c * 29:1 + c * 29 + 28] = img
    return canvas, nrows, ncols


def plot_samples(images: np.ndarray, path: str, title: str, per_class: bool) -> None:
    """A GAN's sample grid: 8 columns, or for a per-class GAN 10 columns, one class each
    (its samples come in the order 0, 1, ..., 9, 0, ...)."""
    plot_grid(images, path, title=title + (", one class per column" if per_class else ""),
              ncols=10 if per_class else 8)


def plot_grids(panels: Sequence[tuple[str, np.ndarray]], path: str, title: str = "", ncols: int = 8) -> None:
    """Several image grids side by side (e.g. real digits and the samples of each model).

    Parameters
    ----------
    panels : (panel title, images (n, 28, 28) in [0, 1]) per panel
    path : PNG file
    title : figure title
    ncols : images per row in each grid
    """
    fig = new_figure(figsize=(3.6 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (name, images) in zip(axes[0], panels):
        canvas, _, _ = grid_canvas(images, ncols)
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, fontsize=9)
    _finish(fig, path, title, dpi=110, title_size=10, rect=(0, 0, 1, 0.95) if title else (0, 0, 1, 1))


def plot_traces(t_ms: np.ndarray, traces: Sequence[np.ndarray], thresholds: Sequence[float],
                spike_ms: Sequence[float], labels: Sequence[str], path: str, title: str = "") -> None:
    """Membrane potential traces, one panel each, with the threshold and the spike marked.

    Parameters
    ----------
    t_ms : float array (n_steps,)
    traces : list of float arrays (n_steps,), mV
    thresholds : threshold of each trace, mV
    spike_ms : spike time of each trace in ms (``nan`` = no spike)
    labels : panel titles
    """
    n = len(traces)
    t_ms = np.asarray(t_ms)
    t_end = float(t_ms[-1]) if t_ms.size else 1.0
    fig = new_figure(figsize=(8.5, 1.1 + 1.5 * n))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)
    for ax, v, th, ts, lab in zip(axes[:, 0], traces, thresholds, spike_ms, labels):
        ax.plot(t_ms, v, color="C0", lw=1.2, drawstyle="steps-post", label="V (membrane)")
        ax.axhline(th, color="C3", ls="--", lw=1, label=f"threshold {th:g} mV")
        v = np.asarray(v, dtype=float)
        if np.isfinite(ts):
            ax.axvline(ts, color="k", lw=1, ls=":", label=f"spike at {ts:g} ms")
            ax.axvspan(ts, t_end, color="0.85", zorder=0, label="refractory (no 2nd spike)")
            before = v[t_ms < ts]
            # the axis shows the approach to threshold; inputs after the spike can push V far
            # beyond it (they do nothing in the refractory period), so those are clipped
            lo = min(0.0, float(before.min()) if before.size else 0.0, th)
            hi = max(1.3 * th, float(before.max()) if before.size else th)
            pad = 0.08 * (hi - lo)
            if v.max() > hi + pad or v.min() < lo - pad:
                ax.set_ylim(lo - pad, hi + pad)
                ax.plot([], [], " ", label=f"V after the spike clipped\n(max {v.max():.4g} mV)")
        else:
            ax.plot([], [], " ", label="no spike (t_max)")
        ax.set_ylabel("V (mV)")
        ax.set_title(lab, fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1, 0].set_xlabel("time (ms)")
    _finish(fig, path, title)


# ----------------------------------------------------------------------------------------------
# activity of a trained run (see experiments/report.py)

#: Colours of the layers of each network (hidden..., output): blues for G, oranges/reds for D.
NET_PALETTES = {"G": ["#1f77b4", "#17becf", "#6a3d9a", "#9ecae1"],
                "D": ["#ff7f0e", "#d62728", "#8c564b", "#fdae6b"]}
#: Colours of real and generated images in every figure.
IMAGE_COLOURS = {"real images": "C2", "generated images": "C3", "generated": "C3"}


def layer_colours(nets: Sequence[str]) -> list[str]:
    """One colour per layer: the k-th layer of network "G" or "D" gets the k-th colour of its palette."""
    seen: dict[str, int] = {}
    out = []
    for net in nets:
        k = seen.get(net, 0)
        seen[net] = k + 1
        palette = NET_PALETTES.get(net, ["0.4"])
        out.append(palette[k % len(palette)])
    return out


def plot_sparsity(layers: Sequence[tuple[str, str, np.ndarray]], t_max: int, path: str,
                  title: str = "") -> None:
    """Sparsity of G and D: spikes per sample per layer, spikes per neuron, silent neurons.

    Three panels: (a) bars of the mean spikes per sample of every layer; (b) the
    distribution over neurons of the spikes per neuron per sample (a neuron fires at most
    once, so this is the fraction of samples in which it fired), one step histogram per
    layer; (c) the fraction of neurons that never fired. The numbers come from
    :func:`models.spikes.sparsity` and :func:`models.spikes.firing_probability`.

    Parameters
    ----------
    layers : (network "G" or "D", layer name, int array (n_samples, n_k) of spike times)
    t_max : int
        The no-spike time (steps).
    path : str
        PNG file to write.
    title : str
    """
    nets = [net for net, _, _ in layers]
    names = [f"{net} {name}" for net, name, _ in layers]
    times = [t for _, _, t in layers]
    sp = sparsity(times, t_max)
    probs = firing_probability(times, t_max)
    colours = layer_colours(nets)
    x = np.arange(len(layers))
    fig = new_figure(figsize=(14, 4.4))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.4, 1.0]})
    ax = axes[0]
    bars = ax.bar(x, sp["spikes_per_sample"], color=colours)
    for b, v, t in zip(bars, sp["spikes_per_sample"], times):
        ax.annotate(f"{v:.1f}\n/ {t.shape[1]}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_ylim(0, max(sp["spikes_per_sample"] + [1.0]) * 1.25)
    ax.set_ylabel("spikes per sample")
    ax.set_title("(a) spikes per sample per layer (of n neurons)", fontsize=9, loc="left")
    ax = axes[1]
    bins = np.linspace(0, 1, 26)
    for k, (p, name) in enumerate(zip(probs, names)):
        ax.hist(p, bins=bins, histtype="step", lw=1.5, color=colours[k], ls="-" if nets[k] == "G" else "--",
                weights=np.full(p.shape, 1.0 / max(p.size, 1)), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("spikes per neuron per sample (= fraction of samples it fired in)")
    ax.set_ylabel("fraction of the layer's neurons")
    ax.set_title("(b) spikes per neuron", fontsize=9, loc="left")
    ax.set_ylim(top=ax.get_ylim()[1] * 30)                      # room for the legend (log axis)
    ax.legend(fontsize=7, loc="upper center", ncol=2, framealpha=0.9)
    ax = axes[2]
    silent = [100.0 * f for f in sp["silent_fraction"]]
    bars = ax.bar(x, silent, color=colours)
    for b, v in zip(bars, silent):
        ax.annotate(f"{v:.1f}%", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                    va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_ylim(0, max(silent + [1.0]) * 1.2)
    ax.set_ylabel("silent neurons (% of the layer)")
    ax.set_title("(c) neurons that never fired", fontsize=9, loc="left")
    for ax in (axes[0], axes[2]):
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    _finish(fig, path, title, dpi=110)


def plot_inference_times(decision_real_ms: np.ndarray, decision_fake_ms: np.ndarray,
                         g_completion_ms: np.ndarray, g_last_spike_ms: np.ndarray, t_max_ms: float,
                         path: str, title: str = "", n_black: int = 0) -> None:
    """Histograms of the inference times: D's decision (real vs fake) and G's completion.

    Parameters
    ----------
    decision_real_ms, decision_fake_ms : float arrays (n,)
        D's first output spike on real and on generated images, ms (``t_max_ms`` = no
        decision, drawn in the last bin and counted in the legend).
    g_completion_ms : float array (n,)
        Time by which all of G's pixels are decided (``t_max_ms`` when a pixel is black).
    g_last_spike_ms : float array (n_on,)
        G's last output spike, ms, of the samples with at least one bright pixel.
    t_max_ms : float
        The window, ms.
    path, title : PNG file, figure title
    n_black : samples left out of ``g_last_spike_ms`` because no pixel spiked (in the legend)
    """
    n_bins = 64
    width = t_max_ms / n_bins
    bins = np.arange(n_bins + 2) * width          # the last bin [t_max, t_max + width) = no spike
    fig = new_figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    for data, name in ((decision_real_ms, "real images"), (decision_fake_ms, "generated images")):
        c = IMAGE_COLOURS[name]
        data = np.asarray(data, dtype=float)
        none = float(np.mean(data >= t_max_ms)) if data.size else 0.0
        ax.hist(data, bins=bins, histtype="stepfilled", alpha=0.45, color=c, lw=1.2, ec=c,
                label=f"{name}: mean {data.mean():.1f} ms, median {np.median(data):.0f} ms"
                      + (f", no decision {100 * none:.1f}%" if none else ""))
    ax.set_xlabel(f"D decision time: first output spike, ms {DECISION_ORIGINS['decision_time_ms']}")
    ax.set_ylabel("samples")
    ax.set_title("(a) discriminator inference time", fontsize=9, loc="left")
    ax = axes[1]
    last = f"last output spike ({n_black} all-black samples left out)" if n_black else "last output spike"
    for data, name, c in ((g_last_spike_ms, last, "C0"),
                          (g_completion_ms, "all pixels decided (t_max if a pixel stays black)", "C4")):
        data = np.asarray(data, dtype=float)
        ax.hist(data, bins=bins, histtype="stepfilled", alpha=0.45, color=c, lw=1.2, ec=c,
                label=f"{name}: mean {data.mean():.1f} ms")
    ax.set_xlabel("G completion time (ms)")
    ax.set_ylabel("samples")
    ax.set_title("(b) generator inference time", fontsize=9, loc="left")
    ax.set_yscale("log")
    ax.set_ylabel("samples (log scale)")
    for ax in axes:
        ax.axvline(t_max_ms, color="0.3", ls=":", lw=1, label=f"t_max = {t_max_ms:g} ms (no spike)")
        ax.set_xlim(0, t_max_ms + 2 * width)
        ax.legend(fontsize=7, loc="best")
    _finish(fig, path, title, dpi=110)


def plot_spike_time_histograms(panels: Sequence[tuple[str, dict[str, np.ndarray]]], t_max: int,
                               dt_ms: float, path: str, title: str = "") -> None:
    """Spike-time histograms, one panel per layer, in spikes per sample per ms.

    Parameters
    ----------
    panels : (layer name, {curve label: int array (n_samples, n_k) of spike times})
        Several curves per panel, e.g. D's layers on real and on generated images.
    t_max : int
        The no-spike time (steps); silent neurons are left out.
    dt_ms : float
    path, title : PNG file, figure title
    """
    n = len(panels)
    ncols = 2 if n > 2 else n
    nrows = int(np.ceil(n / ncols))
    width = max(1, int(np.ceil(t_max / 64)))                     # steps per bin
    edges = np.arange(0, t_max + width, width) * dt_ms
    bin_ms = width * dt_ms
    fig = new_figure(figsize=(6.2 * ncols, 2.8 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, curves) in zip(axes.ravel(), panels):
        for k, (label, t) in enumerate(curves.items()):
            t = np.asarray(t)
            spikes = t[t < t_max].astype(float) * dt_ms
            w = np.full(spikes.shape, 1.0 / (max(t.shape[0], 1) * bin_ms))
            ax.hist(spikes, bins=edges, weights=w, histtype="step", lw=1.4,
                    color=IMAGE_COLOURS.get(label, f"C{k}"),
                    label=f"{label}: {spikes.size / max(t.shape[0], 1):.1f} spikes/sample")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_xlim(0, t_max * dt_ms)
        ax.set_xlabel("spike time (ms)")
        ax.set_ylabel("spikes / sample / ms")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    _finish(fig, path, title, dpi=110)


#: Panels of the training curves: (title, y label, [(metrics.jsonl key, legend label)], log y).
TRAINING_PANELS = [
    ("losses", "loss  0.5 sum e^2,  e = (T - t) / t_max", [("d_loss", "D loss"), ("g_loss", "G loss")], True),
    ("discriminator verdicts", "fraction of samples",
     [("d_acc_real", "D right on real"), ("d_acc_fake", "D right on fake"), ("g_fools_d", "G fools D")], False),
    ("inference time", "time (ms)",
     [("decision_time_ms", f"D decision {DECISION_ORIGINS['decision_time_ms']}"),
      ("g_last_spike_ms", "G last output spike")], False),
    ("spikes", "spikes per sample", [("g_spikes", "G (hidden + output)"), ("d_spikes", "D (hidden + output)")], False),
    ("generated images", "fraction of pixels on", [("g_pixels_on", "G pixels that spiked")], False),
    ("throughput", "training samples / s", [("samples_per_s", "samples per second")], False),
]


def log_floor(values: np.ndarray) -> float | None:
    """Where a log axis draws the zeros of ``values`` (a decade below the smallest positive
    value; NaN ignored), or None when a log axis cannot show them (a negative value, or none
    positive). A loss of exactly 0 is common: D right by its margin on every sample of a step."""
    vals = np.asarray(values, dtype=float)
    vals = vals[~np.isnan(vals)]
    if not vals.size or np.any(vals < 0) or not np.any(vals > 0):
        return None
    return float(vals[vals > 0].min() / 10)


def fractional_epochs(steps: Sequence[dict[str, float]]) -> np.ndarray:
    """X positions of per-step records: epoch e's k-th of n steps at ``e - 1 + k / n``.

    Parameters
    ----------
    steps : list of dicts with ``epoch`` (1-based) and ``step`` keys, in order

    Returns
    -------
    float array (len(steps),)
    """
    epochs = np.array([int(r["epoch"]) for r in steps])
    x = np.empty(len(steps))
    for e in np.unique(epochs):
        idx = np.flatnonzero(epochs == e)
        x[idx] = e - 1 + np.arange(1, idx.size + 1) / idx.size
    return x


def plot_training_curves(steps: Sequence[dict[str, float]], epochs: Sequence[dict[str, float]],
                         path: str, title: str = "") -> None:
    """Training curves of a run (its ``metrics.jsonl``) in one multi-panel PNG.

    Every step is drawn as a thin line, the epoch means as a thick line with markers;
    panels whose keys are absent are left out (see :data:`TRAINING_PANELS`).

    Parameters
    ----------
    steps : per-step records (dicts with ``epoch``, ``step`` and metric keys)
    epochs : per-epoch records (``"kind": "epoch"``; ``epoch`` and the same keys)
    path, title : PNG file, figure title
    """
    keys = set().union(*(r.keys() for r in list(steps) + list(epochs))) if (steps or epochs) else set()
    panels = [p for p in TRAINING_PANELS if any(k in keys for k, _ in p[2])]
    if not panels:
        raise ValueError("no known training metrics to plot")
    ncols = 3 if len(panels) > 4 else 2
    nrows = int(np.ceil(len(panels) / ncols))
    fig = new_figure(figsize=(5.2 * ncols, 3.2 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    xs = fractional_epochs(steps) if steps else np.zeros(0)
    xe = np.array([float(r["epoch"]) for r in epochs])
    for ax, (name, ylabel, curves, log) in zip(axes.ravel(), panels):
        data = [(np.array([r.get(key, np.nan) for r in steps], dtype=float),
                 np.array([r.get(key, np.nan) for r in epochs], dtype=float)) for key, _ in curves]
        floor = log_floor(np.concatenate([np.concatenate(d) for d in data])) if log else None
        log = floor is not None
        for k, ((_, label), (ys, ye)) in enumerate(zip(curves, data)):
            c = f"C{k}"
            if np.all(np.isnan(ys)) and np.all(np.isnan(ye)):
                continue
            if log:
                zero = float(np.mean(ys[~np.isnan(ys)] == 0)) if ys.size else 0.0
                ys, ye = np.where(ys == 0, floor, ys), np.where(ye == 0, floor, ye)
                if zero:
                    label += f"; 0 in {100 * zero:.0f}% of steps, drawn at {floor:.1g}"
            if ys.size:
                ax.plot(xs, ys, color=c, lw=0.6, alpha=0.35)
            if ye.size:
                ax.plot(xe, ye, color=c, lw=1.8, marker="o", ms=3, label=f"{label} (epoch mean)")
            else:
                ax.plot([], [], color=c, label=label)
        if log:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    _finish(fig, path, (title + "\n" if title else "") + "thin lines: every training step; thick: epoch means",
            dpi=110, title_size=10)


#: Panels of the loss comparison: (row key, y label).
COMPARISON_PANELS = [
    ("decision_time_ms", "D decision time (ms)\nfrom D's output window"),
    ("spikes_total", "spikes per sample (G + D)"),
    ("energy_total_pj", "energy per sample, G + D to decision\n(pJ, 45 nm: 0.9 pJ per AC)"),
    ("classifier_fid", "classifier-FID (lower = better)"),
]


def plot_loss_comparison(rows: Sequence[dict[str, float]], path: str, base: str = "ttfs",
                         reference_rows: Sequence[dict[str, float]] = (), title: str = "") -> None:
    """Per-seed points and mean +- std of every loss, one panel per measure.

    Parameters
    ----------
    rows : dicts with ``loss`` (group label), ``seed`` and the keys of :data:`COMPARISON_PANELS`
    path : PNG file
    base : the group the others' relative changes (of the means) are printed against
    reference_rows : rows of a non-spiking reference (label from their ``loss``), drawn as an
        extra group in the panels where they have a value (the ANN GAN's FID)
    title : figure title
    """
    from matplotlib.lines import Line2D

    labels = list(dict.fromkeys(r["loss"] for r in rows))
    seeds = sorted({int(r["seed"]) for r in list(rows) + list(reference_rows)})
    markers = dict(zip(seeds, "osD^vP*Xhp" * (len(seeds) // 10 + 1)))
    fig = new_figure(figsize=(4.6 * len(COMPARISON_PANELS), 4.4))
    axes = fig.subplots(1, len(COMPARISON_PANELS))
    for ax, (key, ylabel) in zip(np.atleast_1d(axes), COMPARISON_PANELS):
        ref_labels = list(dict.fromkeys(r["loss"] for r in reference_rows
                                        if np.isfinite(as_float(r.get(key)))))
        groups = [(lab, [r for r in rows if r["loss"] == lab]) for lab in labels]
        groups += [(lab, [r for r in reference_rows if r["loss"] == lab]) for lab in ref_labels]
        means = {}
        for i, (lab, grp) in enumerate(groups):
            pts = [(int(r["seed"]), as_float(r.get(key))) for r in grp]
            pts = [(sd, v) for sd, v in pts if np.isfinite(v)]
            if not pts:
                continue
            c = "0.45" if lab in ref_labels else f"C{i}"
            for j, (sd, v) in enumerate(pts):
                dx = (j - (len(pts) - 1) / 2) * 0.08
                ax.scatter(i + dx, v, color=c, marker=markers[sd], s=26, zorder=5, alpha=0.85)
            m, s = mean_std([v for _, v in pts])
            means[lab] = m
            ax.errorbar(i, m, yerr=s, color="k", capsize=8, lw=1.2, zorder=4)
            ax.hlines(m, i - 0.28, i + 0.28, color="k", lw=2.2, zorder=4)
        top = ax.get_ylim()[1]
        for i, (lab, _) in enumerate(groups):
            if lab != base and lab in means and lab not in ref_labels and means.get(base):
                change = 100.0 * (means[lab] - means[base]) / means[base]
                ax.annotate(f"{change:+.1f}%\nvs {base}", (i, means[lab]), xytext=(20, 6),
                            textcoords="offset points", fontsize=7, color="C3")
        ax.set_ylim(0, top * 1.15)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    handles = [Line2D([], [], color="0.3", marker=markers[sd], ls="", label=f"seed {sd}") for sd in seeds]
    handles.append(Line2D([], [], color="k", lw=2.2, label="mean +- std (ddof 1)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    _finish(fig, path, title, dpi=110, title_size=10, rect=(0, 0.06, 1, 1))


def plot_energy(rows: Sequence[dict[str, Any]], path: str, title: str = "") -> None:
    """Operations per layer and energy per sample of a spiking G and D against the same-size ANN.

    Parameters
    ----------
    rows : :func:`analysis.energy.table_rows` (per-layer rows of "G" and "D", the totals of
        "G", "D to decision" and "D")
    path : PNG file
    title : figure title
    """
    layers = [r for r in rows if r["layer"] != "all" and r["network"] in ("G", "D")]
    total = {r["network"]: r for r in rows if r["layer"] == "all"}
    fig = new_figure(figsize=(12, 4.6))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    kinds = [("acs", "synaptic ops (ACs)"), ("clock_updates", "clock-driven neuron updates"),
             ("event_updates", "event-driven neuron updates"), ("ann_macs", "ANN MACs (same size)")]
    x = np.arange(len(layers))
    width = 0.8 / len(kinds)
    for j, (key, label) in enumerate(kinds):
        ax.bar(x + (j - (len(kinds) - 1) / 2) * width, [max(float(r[key]), 0.5) for r in layers], width,
               label=label, color=f"C{j}")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['network']} layer {r['layer']}\n{r['n_in']} x {r['n_out']}" for r in layers], fontsize=8)
    ax.set_ylabel("operations per sample")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    bars = [("SNN\n(D to decision)", [("G", total["G"]["energy_pj"]), ("D", total["D to decision"]["energy_pj"])]),
            ("SNN\n(D whole run)", [("G", total["G"]["energy_pj"]), ("D", total["D"]["energy_pj"])]),
            ("same-size\nANN", [("G", total["G"]["ann_energy_pj"]), ("D", total["D"]["ann_energy_pj"])])]
    for i, (_, parts) in enumerate(bars):
        bottom = 0.0
        for k, (net, v) in enumerate(parts):
            ax2.bar(i, v / 1e3, bottom=bottom, color=("C4", "C5")[k], label=net if i == 0 else None)
            bottom += v / 1e3
        ax2.annotate(f"{bottom:,.0f} nJ", (i, bottom), ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(range(len(bars)))
    ax2.set_xticklabels([b[0] for b in bars], fontsize=8)
    ax2.set_ylabel("energy per sample (nJ; 0.9 pJ / AC, 4.6 pJ / MAC)")
    ax2.legend(fontsize=7)
    ax2.grid(axis="y", alpha=0.3)
    _finish(fig, path, title, dpi=110, title_size=10)


def as_float(v) -> float:
    """A number from a table cell (None, '' or text = NaN)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


#: Axis labels of the collapse controls (experiments/controls.py).
CONTROL_LABELS = {"spiking": "spiking G\nspiking D", "spiking_g_ann_d": "spiking G\nANN D",
                  "ann_g_spiking_d": "ANN G\nspiking D", "ann": "ANN G\nANN D"}


def plot_controls(results: dict[str, dict[str, Any]], path: str, title: str = "") -> None:
    """The collapse controls (:mod:`experiments.controls`): G's pixel-error cosine per epoch, and
    classifier-FID and within-class diversity of each pair's samples."""
    names = list(results)
    fig = new_figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for k, name in enumerate(names):
        cos = results[name]["error_cosine"]
        axes[0].plot(np.arange(1, len(cos) + 1), cos, marker="o", ms=3, color=f"C{k}",
                     label=CONTROL_LABELS.get(name, name).replace("\n", " + "))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("mean pairwise cosine of G's pixel error")
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=7)
    for ax, key, label in ((axes[1], "classifier_fid", "classifier-FID (lower is better)"),
                           (axes[2], "within_class_diversity", "within-class diversity (real = 1)")):
        ax.bar(range(len(names)), [results[n][key] for n in names], color=[f"C{k}" for k in range(len(names))])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([CONTROL_LABELS.get(n, n) for n in names], fontsize=8)
        ax.set_ylabel(label)
    axes[2].axhline(1.0, color="k", ls="--", lw=1)
    _finish(fig, path, title, dpi=110)
