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
3. a cumulative sum over the event axis (:func:`running_sum`) gives the potential, and the first
   event step at which it reaches the threshold, plus the latency, is the
   spike time (``t_max`` where it never does).

The loop over layers is the only Python loop; nothing loops over samples,
neurons or time steps.

Weight banks
------------
``weights`` may also be a *bank* of ``C`` weight matrices, shape
``(C, n_in, n_out)``, with ``bank`` (batch,) choosing the matrix of each sample
(e.g. one network per class: :mod:`training.gan` with ``per_class``). The
event matrix then gets ``C * n_in`` columns, sample ``b``'s events in block
``bank[b]``, and is multiplied by the bank flattened to ``(C * n_in, n_out)``:
one sparse product for the whole batch, at the cost of a single network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from .neuron import THRESHOLD_EPS_MV, NeuronParams


@dataclass
class LayerEvents:
    """The input events of one layer, kept by the forward pass for the backward pass.

    Attributes
    ----------
    matrix : scipy CSR matrix (batch * k_max, n_in), 0/1
        Row ``b * k_max + r`` marks the inputs of sample ``b`` that spiked at its
        ``r``-th distinct event step.
    group_time : int32 array (batch, k_max)
        The step of each event group (padding groups: ``t_max - latency``).
    sample, neuron, rank : int arrays (n_events,)
        Per input spike: its sample, input neuron and event-group rank.
    column : int array (n_events,)
        Per input spike: its row of the flattened weights (``neuron`` without a
        weight bank, ``bank[sample] * n_in + neuron`` with one).
    bank : int array (batch,) or None
        The weight matrix of each sample (see "Weight banks" above).
    """

    matrix: sp.csr_matrix
    group_time: np.ndarray
    sample: np.ndarray
    neuron: np.ndarray
    rank: np.ndarray
    column: np.ndarray
    bank: Optional[np.ndarray] = None


def check_bank(weights: np.ndarray, bank: Optional[np.ndarray], batch: int) -> Optional[np.ndarray]:
    """Validate a layer's weights (n_in, n_out) or bank (C, n_in, n_out) against ``bank`` (batch,)."""
    if weights.ndim == 2:
        if bank is not None:
            raise ValueError("bank given for a single weight matrix (n_in, n_out)")
        return None
    if weights.ndim != 3:
        raise ValueError(f"weights must be (n_in, n_out) or a bank (C, n_in, n_out), got {weights.shape}")
    if bank is None:
        raise ValueError(f"a weight bank {weights.shape} needs bank: the matrix of every sample")
    bank = np.asarray(bank)
    if bank.shape != (batch,) or (batch and (bank.min() < 0 or bank.max() >= weights.shape[0])):
        raise ValueError(f"bank must hold {batch} indices in 0..{weights.shape[0] - 1}")
    return bank.astype(np.int64, copy=False)


def group_events(t_in: np.ndarray, horizon: int, dtype=np.float32, bank: Optional[np.ndarray] = None,
                 n_banks: int = 1) -> LayerEvents:
    """Group the input spikes before ``horizon`` by (sample, step); see module docstring.

    With ``bank`` (batch,), sample ``b``'s events go to column block ``bank[b]`` of
    ``n_banks`` blocks of ``n_in`` columns.
    """
    batch, n_in = t_in.shape
    b_ev, i_ev = np.nonzero(t_in < horizon)
    key = b_ev.astype(np.int64) * horizon + t_in[b_ev, i_ev]
    uniq, inv = np.unique(key, return_inverse=True)
    g_b = uniq // horizon
    counts = np.bincount(g_b, minlength=batch)
    k_max = int(counts.max()) if uniq.size else 0
    g_rank = np.arange(uniq.size) - (np.cumsum(counts) - counts)[g_b]
    group_time = np.full((batch, k_max), horizon, dtype=np.int32)
    group_time[g_b, g_rank] = uniq % horizon
    rank = g_rank[inv]
    column = i_ev if bank is None else bank[b_ev] * n_in + i_ev
    matrix = sp.csr_matrix((np.ones(b_ev.size, dtype=dtype), (b_ev * k_max + rank, column)),
                           shape=(batch * k_max, n_banks * n_in))
    return LayerEvents(matrix, group_time, b_ev, i_ev, rank, column, bank)


def running_sum(v: np.ndarray) -> np.ndarray:
    """Cumulative sum over axis 1 of ``v`` (batch, k, n), in place for float64.

    float32 (training): a batched product with a lower-triangular matrix of ones,
    which BLAS runs ~4x faster than ``np.cumsum`` over a middle axis. The sums
    hold the same terms; BLAS may add them in another order, which changes
    nothing on weights of a dyadic grid (every partial sum is exact) and, as
    measured, nothing either in a training run of ``configs/quick_single.toml``
    (byte-identical checkpoint). float64 (bit-level agreement with Brian2):
    ``np.cumsum``, strictly in step order.
    """
    if v.dtype != np.float32:
        return np.cumsum(v, axis=1, out=v)
    k = v.shape[1]
    return np.matmul(np.tri(k, dtype=np.float32), v)


def layer_forward(t_in: np.ndarray, weights: np.ndarray, threshold: float, t_max: int,
                  latency: int = 1, dtype=np.float32, return_events: bool = False,
                  bank: Optional[np.ndarray] = None):
    """Spike times of one layer of IF neurons.

    Parameters
    ----------
    t_in : int array (batch, n_in)
        Input spike times in steps, ``t_max`` = no spike.
    weights : array (n_in, n_out), or a bank (C, n_in, n_out)
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
    return_events : bool
        Also return the :class:`LayerEvents` (for the learning rule).
    bank : int array (batch,), only with a weight bank
        The matrix of ``weights`` each sample uses.

    Returns
    -------
    t_out : int32 array (batch, n_out)
    events : LayerEvents, only if ``return_events``
    """
    t_in = np.asarray(t_in)
    batch, n_in = t_in.shape
    bank = check_bank(np.asarray(weights), bank, batch)
    if weights.shape[-2] != n_in:
        raise ValueError(f"weights of shape {weights.shape} do not match {n_in} inputs")
    n_out = weights.shape[-1]
    n_banks = 1 if bank is None else weights.shape[0]
    # an input at step >= horizon cannot cause a spike inside the window
    horizon = max(t_max - latency, 0)
    t_out = np.full((batch, n_out), t_max, dtype=np.int32)
    # 1. rank the distinct event steps of each sample
    ev = group_events(t_in, horizon, dtype, bank, n_banks)
    k_max = ev.group_time.shape[1]
    if k_max:
        # 2. potential increments at the event steps: sparse events @ W (a bank: flattened)
        w = np.asarray(weights, dtype=dtype).reshape(n_banks * n_in, n_out)
        v = np.asarray(ev.matrix @ w).reshape(batch, k_max, n_out)
        # 3. potential = running sum over the event steps; first crossing of the threshold
        v = running_sum(v)
        crossed = v >= np.asarray(threshold - THRESHOLD_EPS_MV, dtype=v.dtype)
        first = crossed.argmax(axis=1)
        fired = np.take_along_axis(crossed, first[:, None, :], axis=1)[:, 0, :]
        t_cross = np.take_along_axis(ev.group_time, first, axis=1)
        np.copyto(t_out, t_cross + latency, where=fired)
    return (t_out, ev) if return_events else t_out


def forward(weights: Sequence[np.ndarray], t_in: np.ndarray, params: NeuronParams,
            dtype=np.float32, bank: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """Spike times of every layer of a feed-forward TTFS network.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1}), or of banks (C, n_k, n_{k+1}), mV
    t_in : int array (batch, n_0)
    params : NeuronParams
        Its ``thresholds`` has one entry per weight matrix.
    dtype : numpy dtype
        Accumulation precision.
    bank : int array (batch,), only with weight banks: each sample's network

    Returns
    -------
    times : list of int32 arrays (batch, n_k), k = 1 .. L
    """
    if len(weights) != params.n_layers:
        raise ValueError(f"{len(weights)} weight matrices but {params.n_layers} thresholds")
    times = []
    t = np.asarray(t_in)
    for w, theta in zip(weights, params.thresholds):
        t = layer_forward(t, w, theta, params.t_max, params.latency, dtype, bank=bank)
        times.append(t)
    return times
