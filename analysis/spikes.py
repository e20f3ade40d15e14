"""Measures of spiking activity (pure functions on spike-time arrays).

Spike times are integer steps, ``t_max`` = no spike (models/neuron.py). A neuron fires at
most once per sample, so "fired" and "number of spikes" are the same thing per neuron.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np


def firing_probability(times: Sequence[np.ndarray], t_max: int) -> List[np.ndarray]:
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


def sparsity(times: Sequence[np.ndarray], t_max: int) -> Dict[str, list]:
    """Spikes per sample per layer, spikes per neuron and the fraction of silent neurons.

    Parameters
    ----------
    times : list of int arrays (batch, n_k), one per layer

    Returns
    -------
    dict with per-layer lists:
        ``spikes_per_sample`` (mean over samples), ``spikes_per_neuron`` (mean
        over neurons of the fraction of samples in which it fired),
        ``silent_fraction`` (neurons that never fired in any sample).
    """
    out = {"spikes_per_sample": [], "spikes_per_neuron": [], "silent_fraction": []}
    for t, p in zip(times, firing_probability(times, t_max)):
        out["spikes_per_sample"].append(float((np.asarray(t) < t_max).sum(axis=1).mean()))
        out["spikes_per_neuron"].append(float(p.mean()))
        out["silent_fraction"].append(float((p == 0).mean()))
    return out


def spikes_before(times: Sequence[np.ndarray], t_decision: np.ndarray, t_max: int,
                  window_starts: Optional[Sequence[int]] = None) -> np.ndarray:
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
