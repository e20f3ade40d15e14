"""Measures of spiking activity (pure functions on spike-time arrays).

Spike times are integer steps, ``t_max`` = no spike (models/neuron.py).
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


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
    for t in times:
        fired = np.asarray(t) < t_max
        out["spikes_per_sample"].append(float(fired.sum(axis=1).mean()))
        out["spikes_per_neuron"].append(float(fired.mean()))
        out["silent_fraction"].append(float((~fired.any(axis=0)).mean()))
    return out


def spikes_before(times: Sequence[np.ndarray], t_decision: np.ndarray) -> np.ndarray:
    """Spikes per sample that occurred no later than that sample's decision time.

    Parameters
    ----------
    times : list of int arrays (batch, n_k)
    t_decision : int array (batch,)

    Returns
    -------
    counts : int array (batch,)
    """
    td = np.asarray(t_decision)[:, None]
    return sum((np.asarray(t) <= td).sum(axis=1) for t in times)


def decision_times(t_out: np.ndarray, t_max: int):
    """First output spike of every sample (steps; ``t_max`` if none) and the winner (-1 if none)."""
    t_first = t_out.min(axis=1)
    return t_first, np.where(t_first < t_max, t_out.argmin(axis=1), -1)


def completion_times(t_out: np.ndarray, t_max: int) -> np.ndarray:
    """Time by which every output neuron is decided: its last spike, or ``t_max`` if any is silent."""
    return np.where((t_out < t_max).all(axis=1), t_out.max(axis=1), t_max)
