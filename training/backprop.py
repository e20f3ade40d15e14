"""S4NN approximate temporal backpropagation, batched over samples.

Kheradpisheh & Masquelier (2020) approximate ``dt_j / dV_j = -1`` and
``dV_j / dw_ij = [t_i < t_j]`` (the input arrived before the output spike;
:func:`models.neuron.causal_mask`). With ``e`` the *desired shift* of the
spike times (``T - t``, normalised per sample), for a layer with inputs ``i``
and outputs ``k``::

    dW[i, k]  = mean_b  e[b, k] * [t_i^b < t_k^b]                (update: W -= lr * dW)
    e_in[b, i] = sum_k  e[b, k] * w_ik * [t_i^b < t_k^b]         (then e_in /= ||e_in||)

``e_in`` is the error of the layer below; for the first layer it is the error
of the *input spike times*, which is how the generator is trained through the
discriminator. Everything is vectorised over the batch and event-driven: the
mask is only evaluated at the input spikes kept by
:func:`models.kernel.layer_forward` (no ``(batch, n_in, n_out)`` tensor), a
chunk of spikes at a time (bounded memory; the sums run in the same order
whatever the chunk size, so the result does not depend on it).

With a weight bank (``(C, n_in, n_out)``, one network per sample group; see
:mod:`models.kernel`), ``dW[c]`` is the mean over the samples of group ``c``
only, so each network learns as if it had been trained alone.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.kernel import LayerEvents, layer_forward, pinned_blas_threads
from models.neuron import NeuronParams


@dataclass
class Layer:
    """One layer of the paper's IF network.

    Attributes
    ----------
    w : float32 array (n_in, n_out), mV, or a weight bank (C, n_in, n_out)
    theta : float, the layer's threshold in mV
    """

    w: np.ndarray
    theta: float

    def thresholds(self, t_max: int) -> np.ndarray:
        """Per-neuron thresholds (float64 (n_out,), mV): the layer's one threshold."""
        return np.full(self.w.shape[-1], float(self.theta))


@dataclass
class Trace:
    """What the forward pass keeps for the backward pass.

    Attributes
    ----------
    t_in : int array (batch, n_0), the input spike times
    times : list of int32 arrays (batch, n_k), k = 1..L
    events : list of LayerEvents, one per layer
    bank : int array (batch,) or None, each sample's network (weight banks only)
    extra : dict layer -> int array (batch, m), spike times of input neurons beyond the layer
        below that feed layer ``k`` (0-based; their weights are the last rows of its matrix)
    groups : int array (batch,) or None, the sub-batches a batch statistic was computed over
    """

    t_in: np.ndarray
    times: list[np.ndarray]
    events: list[LayerEvents]
    bank: np.ndarray | None = None
    extra: dict[int, np.ndarray] | None = None
    groups: np.ndarray | None = None

    @property
    def output(self) -> np.ndarray:
        return self.times[-1]

    def layer_input_times(self, k: int) -> np.ndarray:
        """Spike times feeding layer ``k`` (0-based; negative counts from the output layer),
        the extra input neurons of :attr:`extra` included."""
        k = k % len(self.times)
        t = self.t_in if k == 0 else self.times[k - 1]
        if self.extra and k in self.extra:
            t = np.concatenate([t, self.extra[k]], axis=1)
        return t


def forward_trace(weights: Sequence[np.ndarray], t_in: np.ndarray, params: NeuronParams,
                  dtype=np.float32, bank: np.ndarray | None = None,
                  extra_inputs: Callable[[int, np.ndarray], np.ndarray | None] | None = None,
                  groups: np.ndarray | None = None) -> Trace:
    """Forward pass of :func:`models.kernel.forward`, keeping what learning needs.

    ``extra_inputs(k, t)``, if given, returns the spike times (batch, m) of input neurons that
    feed layer ``k`` beside the layer below (whose times are ``t``), or None: a batch statistic
    given to a layer as one more input (:class:`Trace` ``extra``; ``groups`` is recorded).
    """
    times, events, extra = [], [], {}
    t = np.asarray(t_in)
    for k, (w, theta) in enumerate(zip(weights, params.thresholds)):
        more = extra_inputs(k, t) if extra_inputs is not None else None
        if more is not None:
            extra[k] = more
            t = np.concatenate([t, more], axis=1)
        t, ev = layer_forward(t, w, theta, params.t_max, params.latency, dtype, return_events=True, bank=bank,
                              strict=params.strict)
        times.append(t)
        events.append(ev)
    return Trace(np.asarray(t_in), times, events, events[0].bank if events else None, extra or None, groups)


def normalise(e: np.ndarray) -> np.ndarray:
    """Per-sample L2 normalisation ``e / ||e||`` (rows with ``||e|| = 0`` stay 0)."""
    norm = np.sqrt(np.einsum("bk,bk->b", e, e, dtype=np.float64))
    return (e / np.where(norm > 0, norm, 1.0)[:, None]).astype(e.dtype, copy=False)


#: Default bytes of per-event-step errors (event groups x n_out) that the backward pass of a
#: layer holds at once; training batches fit in one chunk, larger ones are cut into chunks of
#: samples (same result, bounded memory).
BACKWARD_CHUNK_BYTES = 64 << 20


def _chunk_backward(events: LayerEvents, ev: slice, s0: int, n: int, horizon: int, t_out: np.ndarray,
                    e: np.ndarray, flat: np.ndarray, latency: int, dW: np.ndarray | None,
                    e_in: np.ndarray | None) -> None:
    """Add the samples ``s0 .. s0 + n - 1`` (their spikes ``ev``) to ``dW`` and fill their ``e_in``.

    ``dW`` (rows of ``flat``, n_out) holds the sums of the earlier samples; every row's sum
    continues in sample order, so chunking never changes a bit of the result.
    """
    b_ev, time, col = events.sample[ev], events.time[ev], events.column[ev]
    # event groups: the distinct (sample, step) pairs, in sample then step order
    present = np.zeros((n, horizon), dtype=bool)
    present[b_ev - s0, time] = True
    group_id = np.cumsum(present.ravel(), dtype=np.int64) - 1
    g_b, g_t = np.nonzero(present)
    g_b += s0
    # d[g, k] = e[b, k] * [t_g + latency <= t_out[b, k]] for group g = (b, t_g)
    d = np.where(g_t[:, None] + latency <= t_out[g_b], e[g_b], 0).astype(e.dtype, copy=False)
    group = group_id[(b_ev - s0) * horizon + time]
    if dW is not None:
        # row i of dW: its earlier sum, then the groups holding a spike of input i, in sample order
        order = np.argsort(col, kind="stable")
        counts = np.bincount(col, minlength=len(dW))
        touched = np.flatnonzero(counts)
        carried = s0 > 0
        per_row = counts[touched] + carried
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        indices = np.empty(indptr[-1], dtype=np.int64)
        if carried:  # entry 0 of each row: the row's running sum, stacked above the groups
            rest = np.ones(indices.size, dtype=bool)
            rest[indptr[:-1]] = False
            indices[~rest] = np.arange(touched.size)
            indices[rest] = group[order] + touched.size
            stacked = np.concatenate([dW[touched], d.astype(dW.dtype, copy=False)])
        else:
            indices[:] = group[order]
            stacked = d
        rows = sp.csr_matrix((np.ones(indices.size, dtype=events.dtype), indices, indptr),
                             shape=(touched.size, len(stacked)))
        dW[touched] = rows @ stacked
    if e_in is not None:
        e_in[b_ev, events.neuron[ev]] = np.einsum(
            "nk,nk->n", d[group], flat[col].astype(e.dtype, copy=False))


def layer_backward(events: LayerEvents, t_in: np.ndarray, t_out: np.ndarray, e: np.ndarray,
                   weights: np.ndarray, latency: int, want_input_error: bool,
                   silent_inputs_full_error: bool = False, want_grad: bool = True,
                   chunk_bytes: int | None = None):
    """Gradient of one layer and the error of its inputs.

    Parameters
    ----------
    events : LayerEvents of the layer's forward pass
    t_in : int array (batch, n_in); t_out : int array (batch, n_out)
    e : float array (batch, n_out), the (normalised) desired shift of the output times
    weights : array (n_in, n_out), or a bank (C, n_in, n_out) (``events.bank`` says whose)
    latency : int
    want_input_error : bool
        Compute ``e_in`` (not needed for the first layer of a network whose
        input is data).
    silent_inputs_full_error : bool
        Give inputs that did not spike inside the window the error they would
        have if they had spiked at step 0 (``e_in = e @ W.T``) instead of 0.
        This is the remedy for dead generator pixels (see :mod:`training.gan`).
    want_grad : bool
        Compute ``dW`` (not needed for a frozen layer, e.g. D's in the G step).
    chunk_bytes : int, optional
        Bytes of errors ``(event groups, n_out)`` held at once (default
        :data:`BACKWARD_CHUNK_BYTES`); any value gives the same result.

    Returns
    -------
    dW : float array like ``weights``, mean over the batch (a bank: over each matrix's
        samples); None without ``want_grad``
    e_in : float array (batch, n_in) (not normalised) or None
    """
    batch, n_out = e.shape
    bank = events.bank
    flat = weights.reshape(-1, n_out)  # a bank (C, n_in, n_out) as (C * n_in, n_out)
    acc = np.result_type(events.dtype, e.dtype)
    dW = np.zeros(flat.shape, dtype=acc) if want_grad else None
    e_in = np.zeros(t_in.shape, dtype=e.dtype) if want_input_error else None
    budget = BACKWARD_CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)
    step = max(1, budget // max(1, n_out * e.itemsize))  # input spikes per chunk (>= groups)
    horizon = int(events.time.max()) + 1 if events.time.size else 0
    ends = np.cumsum(np.bincount(events.sample, minlength=batch))  # spikes up to each sample
    s0 = 0 if want_grad or want_input_error else batch
    while s0 < batch:  # chunks of whole samples; their spikes are contiguous
        a = int(ends[s0 - 1]) if s0 else 0
        s1 = int(min(max(np.searchsorted(ends, a + step, side="right"), s0 + 1), batch))
        z = int(ends[s1 - 1])
        if z > a:
            _chunk_backward(events, slice(a, z), s0, s1 - s0, horizon, t_out, e, flat, latency, dW, e_in)
        s0 = s1
    if want_grad:
        dW = dW.reshape(weights.shape)
        if bank is None:
            dW /= batch
        else:  # each matrix: the mean over its own samples
            dW /= np.maximum(np.bincount(bank, minlength=weights.shape[0]), 1)[:, None, None]
    if want_input_error and silent_inputs_full_error:
        silent = np.ones(t_in.shape, dtype=bool)
        silent[events.sample, events.neuron] = False
        if silent.any():
            if bank is None:
                full = e @ weights.T.astype(e.dtype, copy=False)
            else:  # one product per matrix of the bank (C <= a few dozen)
                full = np.zeros_like(e_in)
                for c in np.unique(bank):
                    rows_c = bank == c
                    full[rows_c] = e[rows_c] @ weights[c].T.astype(e.dtype, copy=False)
            e_in[silent] = full[silent]
    return (dW.astype(weights.dtype, copy=False) if want_grad else None), e_in


def backward(weights: Sequence[np.ndarray], trace: Trace, e_out: np.ndarray, params: NeuronParams,
             input_error: bool = False, silent_inputs_full_error: bool = False,
             weight_grads: bool = True,
             extra_error: Callable[[int, np.ndarray, np.ndarray], np.ndarray] | None = None):
    """S4NN backward pass through every layer.

    Parameters
    ----------
    weights : list of arrays (n_k, n_{k+1})
    trace : Trace of the forward pass
    e_out : float array (batch, n_L), desired shift ``(T - t) / t_max`` of the output times
    params : NeuronParams
    input_error : bool
        Also return the (normalised) error of the input spike times.
    silent_inputs_full_error : bool
        See :func:`layer_backward`; applied at every layer whose input error is
        computed (silent hidden neurons as well as silent inputs).
    weight_grads : bool
        Compute the weight gradients (False: only the input error, for a frozen
        network such as D in the G step).
    extra_error : callable, optional
        ``extra_error(k, e_below, e_extra)`` for a layer ``k`` with extra input neurons
        (``trace.extra``): the error of the layer below (batch, n_{k-1}) given the error of the
        extra inputs (batch, m), both before normalisation (how a batch statistic passes its
        error on). Without it the extra inputs' error is dropped.

    Returns
    -------
    grads : list of arrays like ``weights`` (mean over the batch, or over each bank
        matrix's samples; None without ``weight_grads``)
    e_in : float array (batch, n_0) or None
    """
    L = len(weights)
    grads: list[np.ndarray | None] = [None] * L
    e = normalise(np.asarray(e_out, dtype=np.float32))
    e_in = None
    with pinned_blas_threads():  # small products: see models.kernel.pinned_blas_threads
        for k in range(L - 1, -1, -1):
            want = k > 0 or input_error
            grads[k], e_below = layer_backward(trace.events[k], trace.layer_input_times(k), trace.times[k], e,
                                               weights[k], params.latency, want,
                                               silent_inputs_full_error, weight_grads)
            if want:
                if trace.extra and k in trace.extra:  # the extra inputs are the last columns
                    m = trace.extra[k].shape[1]
                    e_below, e_extra = e_below[:, :-m], e_below[:, -m:]
                    if extra_error is not None:
                        e_below = extra_error(k, e_below, e_extra)
                e = normalise(e_below)
                if k == 0:
                    e_in = e
    return grads, e_in


def smoothness_penalty(weights: Sequence[np.ndarray], trace: Trace, n: int, params: NeuronParams):
    """An R1-style penalty in S4NN's approximation, and its weight gradients (one hidden layer).

    With ``dt/dV = -1`` a later input spike lowers a neuron's potential by its weight, so the
    sensitivity of D's verdict ``s = t_real - t_fake`` to input ``i`` is, per sample::

        a_j = sum_k c_k w2_jk [t_j < t_k],   c = (+1, -1)   (real, fake outputs)
        g_i = sum_j w1_ij [t_i < t_j] a_j

    and the penalty is ``P = 0.5 mean_b sum_i g_i ** 2`` on the first ``n`` samples of ``trace``
    (the real images), whose gradients are ``dP/dw1_ij = mean_b g_i [t_i < t_j] a_j`` and
    ``dP/dw2_jk = mean_b h_j c_k [t_j < t_k]`` with ``h_j = sum_i g_i w1_ij [t_i < t_j]``.
    Only input spikes inside the horizon count (as in :func:`layer_backward`).

    Parameters
    ----------
    weights : [w1 (n_in, n_hidden), w2 (n_hidden, 2)], mV (no weight banks)
    trace : Trace of the forward pass; n : samples penalised (the first ``n``)
    params : NeuronParams

    Returns
    -------
    P : float, the penalty (mean over the ``n`` samples)
    grads : [dP/dw1, dP/dw2], float32 like ``weights``
    """
    if len(weights) != 2 or weights[0].ndim != 2:
        raise ValueError("the smoothness penalty is written for one hidden layer without weight banks")
    w1, w2 = (np.asarray(w, np.float32) for w in weights)
    lat, horizon = params.latency, params.t_max - params.latency
    t_in, t_h, t_out = (np.asarray(t[:n]) for t in (trace.t_in, trace.times[0], trace.times[1]))
    n_rows2 = len(w2)
    w2 = w2[:t_h.shape[1]]  # an extra input of the output layer (a batch statistic) is not penalised
    c = np.array([1.0, -1.0], np.float32)
    m2 = ((t_h[:, :, None] + lat) <= t_out[:, None, :]) & (t_h < horizon)[:, :, None]   # (n, H, 2)
    a = (m2 * (w2 * c)).sum(axis=2)                                                   # (n, H)
    g = np.empty(t_in.shape, np.float32)
    h = np.empty(t_h.shape, np.float32)
    grad1 = np.zeros(w1.shape, np.float32)
    with pinned_blas_threads():
        for b in range(n):  # one sample's (n_in, H) masked weights at a time: bounded memory
            m1 = ((t_in[b, :, None] + lat) <= t_h[b, None, :]) & (t_in[b] < horizon)[:, None]
            mw = np.where(m1, w1, np.float32(0))
            g[b] = mw @ a[b]
            h[b] = g[b] @ mw
            grad1 += np.where(m1, np.outer(g[b], a[b]), np.float32(0))
    grad2 = np.zeros((n_rows2, 2), np.float32)
    grad2[:len(w2)] = (h[:, :, None] * m2).sum(axis=0) * c / n
    return (float(0.5 * np.mean(np.sum(np.square(g, dtype=np.float64), axis=1))),
            [(grad1 / n).astype(weights[0].dtype), grad2.astype(weights[1].dtype)])


def sgd_step(weights: list[np.ndarray], grads: Sequence[np.ndarray], lr: Sequence[float],
             l2: float) -> None:
    """In place: ``W -= lr * (dW + l2 * W)`` for every layer (lr per layer)."""
    for w, g, eta in zip(weights, grads, lr):
        w -= np.float32(eta) * (g + np.float32(l2) * w)


class DeadNeuronMonitor:
    """Counts spikes of hidden layers over an epoch; re-initialises dead neurons (S4NN).

    A hidden neuron that fired in fewer than ``min_rate`` of the samples of an
    epoch gets new incoming weights drawn from its layer's initial range. With
    weight banks (``n_banks`` networks, :mod:`models.kernel`) every network's
    neurons are counted over that network's own samples.
    """

    def __init__(self, sizes: Sequence[int], min_rate: float = 1e-3, n_banks: int = 1):
        self.min_rate = min_rate
        self.counts = [np.zeros((n_banks, n), dtype=np.int64) for n in sizes[1:-1]]
        self.samples = np.zeros(n_banks, dtype=np.int64)

    def update(self, trace: Trace, t_max: int) -> None:
        bank = np.zeros(len(trace.t_in), dtype=np.int64) if trace.bank is None else trace.bank
        member = (np.arange(len(self.samples))[:, None] == bank[None, :]).astype(np.int64)  # (C, batch)
        for c, t in zip(self.counts, trace.times[:-1]):
            c += member @ (t < t_max)
        self.samples += member.sum(axis=1)

    def reinit(self, weights: list[np.ndarray], ranges, rng: np.random.Generator) -> list[int]:
        """Re-draw the input weights of dead neurons; returns how many per hidden layer."""
        revived = []
        for k, c in enumerate(self.counts):
            seen = self.samples > 0
            dead_bank, dead = np.nonzero((c < self.min_rate * np.maximum(self.samples, 1)[:, None]) & seen[:, None])
            if dead.size:
                lo, hi = ranges[k]
                w = weights[k] if weights[k].ndim == 3 else weights[k][None]  # a view
                w[dead_bank, :, dead] = rng.uniform(lo, hi, (w.shape[1], dead.size)).T
            revived.append(int(dead.size))
            c[:] = 0
        self.samples[:] = 0
        return revived
