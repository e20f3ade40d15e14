"""Measures of spiking activity: pure functions on spike-time arrays.

Spike times are integer steps, ``t_max`` = no spike (models/neuron.py). A neuron fires at
most once per sample, so "fired" and "number of spikes" are the same thing per neuron.
These live in ``models`` so that training (the classifier's evaluation) and analysis (the
GAN's measures, the figures) count spikes with the same code.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spike_counts(times: Sequence[np.ndarray], t_max: int) -> np.ndarray:
    """Spikes of each sample, summed over the given layers.

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer (at least one)
    t_max : int
        The no-spike time (steps): neurons at ``t_max`` did not fire.

    Returns
    -------
    int array (batch,)
    """
    if len(times) == 0:
        raise ValueError("spike_counts needs at least one layer")
    return sum((np.asarray(t) < t_max).sum(axis=1) for t in times)


def spikes_per_sample(times: Sequence[np.ndarray], t_max: int) -> float:
    """Mean over samples of the total number of spikes in the given layers.

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer (at least one); the layers
        counted are exactly those given (e.g. hidden + output, without the input)
    t_max : int
        The no-spike time (steps): neurons at ``t_max`` did not fire.

    Returns
    -------
    float
        ``spike_counts(times, t_max).mean()``; the sum over layers of each layer's mean
        spikes per sample.
    """
    n = len(times[0]) if len(times) else 0
    if n == 0:
        return float(spike_counts(times, t_max).mean())
    # the same value: an integer total over n, correctly rounded either way (count_nonzero
    # skips the per-row sums and the float conversion of mean, a training step's cost)
    return sum(np.count_nonzero(np.asarray(t) < t_max) for t in times) / n


def firing_probability(times: Sequence[np.ndarray], t_max: int) -> list[np.ndarray]:
    """Per neuron, the fraction of samples in which it fired (= its mean spikes per sample).

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer
    t_max : int
        The no-spike time (steps).

    Returns
    -------
    list of float arrays (n_k,), values in [0, 1]; 0 = silent neuron
    """
    return [(np.asarray(t) < t_max).mean(axis=0) for t in times]


def sparsity(times: Sequence[np.ndarray], t_max: int) -> dict[str, list]:
    """Spikes per sample per layer, spikes per neuron and the fraction of silent neurons.

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer

    Returns
    -------
    dict with per-layer lists:
        ``spikes_per_sample`` (mean over samples, :func:`spikes_per_sample` of the layer),
        ``spikes_per_neuron`` (mean over neurons of the fraction of samples in which it
        fired), ``silent_fraction`` (neurons that never fired in any sample).
    """
    out = {"spikes_per_sample": [], "spikes_per_neuron": [], "silent_fraction": []}
    for t, p in zip(times, firing_probability(times, t_max)):
        out["spikes_per_sample"].append(spikes_per_sample([t], t_max))
        out["spikes_per_neuron"].append(float(p.mean()))
        out["silent_fraction"].append(float((p == 0).mean()))
    return out


def spikes_before(times: Sequence[np.ndarray], t_decision: np.ndarray, t_max: int,
                  window_starts: Sequence[int] | None = None) -> np.ndarray:
    """Spikes per sample that occurred no later than that sample's decision time.

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer, the last one the output layer
    t_decision : int array (batch,)
        Decision time of each sample (steps in the output layer's window; ``t_max`` when there
        was no decision, in which case every spike of the window counts).
    t_max : int
        The no-spike time: silent neurons (``t == t_max``) never count.
    window_starts : steps at which each layer's window opens (windowed ramp model: layer k
        fires in its own window, ``k * t_max``, so that every hidden spike precedes the output
        window); None: one shared window (the IF model)

    Returns
    -------
    counts : int array (batch,)
    """
    starts = list(window_starts) if window_starts is not None else [0] * len(times)
    td = np.asarray(t_decision)[:, None] + starts[-1]
    return sum(((np.asarray(t) + s <= td) & (np.asarray(t) < t_max)).sum(axis=1)
               for t, s in zip(times, starts))


def decision_ties(t_out: np.ndarray, t_max: int) -> np.ndarray:
    """Samples whose first output spike is shared by several output neurons (a tie).

    :func:`models.coding.decide` then names the lowest index the winner (D: "real").

    Returns
    -------
    bool array (batch,)
    """
    t_out = np.asarray(t_out)
    t_first = t_out.min(axis=1, keepdims=True)
    return ((t_out == t_first).sum(axis=1) > 1) & (t_first[:, 0] < t_max)


def completion_times(t_out: np.ndarray, t_max: int) -> np.ndarray:
    """Time by which every output neuron is decided: its last spike, or ``t_max`` if any is silent."""
    return np.where((t_out < t_max).all(axis=1), t_out.max(axis=1), t_max)


def last_spike_times(t_out: np.ndarray, t_max: int) -> np.ndarray:
    """Last output spike that did occur in every sample (steps; 0 if the layer stayed silent).

    Parameters
    ----------
    t_out : int array (batch, n)
    t_max : int

    Returns
    -------
    int array (batch,)
    """
    t_out = np.asarray(t_out)
    return np.where(t_out < t_max, t_out, 0).max(axis=1)


def fired_fraction(t: np.ndarray, t_max: int) -> float:
    """Fraction of (sample, neuron) pairs of one layer that fired (e.g. G's pixels that are on).

    Parameters
    ----------
    t : int array (batch, n), spike times of one layer
    t_max : int
        The no-spike time (steps).
    """
    t = np.asarray(t)
    return np.count_nonzero(t < t_max) / t.size if t.size else float("nan")  # = the mean of the fired flags
