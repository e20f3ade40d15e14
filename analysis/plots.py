"""Matplotlib figures (PNG) of spiking activity. Every axis carries units."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_raster(times: Sequence[np.ndarray], t_max: int, dt_ms: float, path: str,
                names: Optional[Sequence[str]] = None, title: str = "") -> None:
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
    """
    plt = _pyplot()
    n = len(times)
    names = list(names) if names is not None else [f"layer {k}" for k in range(n)]
    heights = [max(0.8, min(2.5, len(t) / 200)) for t in times]
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.0 + 1.2 * sum(heights)), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, t, name in zip(axes[:, 0], times, names):
        t = np.asarray(t)
        idx = np.flatnonzero(t < t_max)
        ax.scatter(t[idx] * dt_ms, idx, s=2 if len(t) > 100 else 8, marker="|" if len(t) <= 100 else ".",
                   color="k", linewidths=1)
        ax.set_ylim(-0.5, len(t) - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
        ax.text(1.0, 1.0, f"{idx.size}/{len(t)} spiked", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8)
    axes[-1, 0].set_xlim(0, t_max * dt_ms)
    axes[-1, 0].set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_grid(images: np.ndarray, path: str, title: str = "", ncols: int = 8) -> None:
    """A grid of images (n, 28, 28) in [0, 1], white on black, as a PNG."""
    plt = _pyplot()
    n = len(images)
    ncols = min(ncols, max(n, 1))
    nrows = int(np.ceil(n / ncols)) if n else 1
    canvas = np.zeros((nrows * 29 + 1, ncols * 29 + 1), dtype=np.float32)
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[1 + r * 29:1 + r * 29 + 28, 1 + c * 29:1 + c * 29 + 28] = img
    fig, ax = plt.subplots(figsize=(ncols * 0.6 + 0.4, nrows * 0.6 + (0.6 if title else 0.3)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    plt = _pyplot()
    n = len(traces)
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.1 + 1.5 * n), sharex=True, squeeze=False)
    for ax, v, th, ts, lab in zip(axes[:, 0], traces, thresholds, spike_ms, labels):
        ax.plot(t_ms, v, color="C0", lw=1.2, drawstyle="steps-post", label="V")
        ax.axhline(th, color="C3", ls="--", lw=1, label=f"threshold {th:g} mV")
        if np.isfinite(ts):
            ax.axvline(ts, color="k", lw=1, ls=":", label=f"spike at {ts:g} ms")
        ax.set_ylabel("V (mV)")
        ax.set_title(lab, fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
