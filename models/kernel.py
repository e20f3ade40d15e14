"""Vectorised, event-driven NumPy simulator of the TTFS network.

Implements exactly the discrete-time semantics of :mod:`models.neuron` (the
equivalence tests compare it spike for spike with :mod:`models.brian`).

How a layer is computed
-----------------------
The membrane potential of a non-leaky IF neuron only changes at the steps
where an input spike arrives, so the kernel evaluates it at those *event
steps* only:

1. the input spikes of the batch are grouped by (sample, step); each sample's
   distinct steps are ranked ``0 .. K-1`` (``K`` = most distinct steps of any
   sample in the batch, at most ``t_max``);
2. a sparse ``(batch * K, n_in)`` 0/1 matrix of the events times ``W`` gives the
   potential *increment* of every neuron at every event step
   (``n_spikes * n_out`` multiply-adds instead of ``n_in * t_max * n_out``);
3. a cumulative sum over the event axis gives the potential, and the first
   event step at which it reaches the threshold, plus the latency, is the
   spike time (``t_max`` where it never does).

The loop over layers is the only Python loop; nothing loops over samples,
neurons or time steps.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import scipy.sparse as sp

from .neuron import THRESHOLD_EPS_MV, NeuronParams


def layer_forward(t_in: np.ndarray, weights: np.ndarray, threshold: float, t_max: int,
                  latency: int = 1, dtype=np.float32) -> np.ndarray:
    """Spike times of one layer of IF neurons.

    Parameters
    ----------
    t_in : int array (batch, n_in)
        Input spike times in steps, ``t_max`` = no spike.
    weights : array (n_in, n_out)
        Synaptic weights in mV.
    threshold : float
        Firing threshold in mV.
    t_max : int
        Window length in steps.
    latency : int
        Steps from an input spike to the earliest output spike it can cause.
    dtype : numpy dtype
        Accumulation precision (float32 is exact for weights on a dyadic grid;
        use float64 for bit-level agreement with Brian2 on arbitrary weights).

    Returns
    -------
    t_out : int32 array (batch, n_out)
    """
    t_in = np.asarray(t_in)
    batch, n_in = t_in.shape
    if weights.ndim != 2 or weights.shape[0] != n_in:
        raise ValueError(f"weights of shape {weights.shape} do not match {n_in} inputs")
    n_out = weights.shape[1]
    horizon = t_max - latency  # an input at step >= horizon cannot cause a spike in the window
    t_out = np.full((batch, n_out), t_max, dtype=np.int32)
    if horizon <= 0:
        return t_out
    b_ev, i_ev = np.nonzero(t_in < horizon)
    if b_ev.size == 0:
        return t_out
    # 1. rank the distinct event steps of each sample
    key = b_ev.astype(np.int64) * horizon + t_in[b_ev, i_ev]
    uniq, inv = np.unique(key, return_inverse=True)
    g_b = uniq // horizon
    counts = np.bincount(g_b, minlength=batch)
    k_max = int(counts.max())
    g_rank = np.arange(uniq.size) - (np.cumsum(counts) - counts)[g_b]
    group_time = np.full((batch, k_max), horizon, dtype=np.int32)
    group_time[g_b, g_rank] = uniq % horizon
    # 2. potential increments at the event steps: sparse events @ W
    rows = g_b[inv] * k_max + g_rank[inv]
    events = sp.csr_matrix((np.ones(rows.size, dtype=dtype), (rows, i_ev)),
                           shape=(batch * k_max, n_in))
    v = np.asarray(events @ np.asarray(weights, dtype=dtype)).reshape(batch, k_max, n_out)
    # 3. potential = running sum; first crossing of the threshold
    np.cumsum(v, axis=1, out=v)
    crossed = v >= np.asarray(threshold - THRESHOLD_EPS_MV, dtype=v.dtype)
    first = crossed.argmax(axis=1)
    fired = np.take_along_axis(crossed, first[:, None, :], axis=1)[:, 0, :]
    t_cross = np.take_along_axis(group_time, first, axis=1)
    np.copyto(t_out, t_cross + latency, where=fired)
    return t_out


def forward(weights: Sequence[np.ndarray], t_in: np.ndarray, params: NeuronParams,
            dtype=np.float32) -> List[np.ndarray]:
    """Spike times of every layer of a feed-forward TTFS network.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1}), mV
    t_in : int array (batch, n_0)
    params : NeuronParams
        Its ``thresholds`` has one entry per weight matrix.
    dtype : numpy dtype
        Accumulation precision.

    Returns
    -------
    times : list of int32 arrays (batch, n_k), k = 1 .. L
    """
    if len(weights) != params.n_layers:
        raise ValueError(f"{len(weights)} weight matrices but {params.n_layers} thresholds")
    times = []
    t = np.asarray(t_in)
    for w, theta in zip(weights, params.thresholds):
        t = layer_forward(t, w, theta, params.t_max, params.latency, dtype)
        times.append(t)
    return times
