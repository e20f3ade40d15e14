"""Vectorised, event-driven NumPy simulator of the TTFS network.

Implements exactly the discrete-time semantics of :mod:`models.neuron` (the
equivalence tests compare it spike for spike with :mod:`models.brian`).

How a layer is computed
-----------------------
The membrane potential of a non-leaky IF neuron only changes at the steps
where an input spike arrives, so the kernel evaluates it at those *event
steps* only:

1. the input spikes of a sample are grouped by step; its distinct steps are
   ranked ``0 .. K_b - 1`` (``K_b <= t_max``);
2. a sparse 0/1 matrix of the events (one row per (rank, sample)) times ``W``
   gives the potential *increment* of every neuron at every event step
   (``n_spikes * n_out`` multiply-adds instead of ``n_in * t_max * n_out``);
3. a running sum over the ranks gives the potential, and the first event step
   at which it reaches the threshold, plus the latency, is the spike time
   (``t_max`` where it never does).

Chunks (bounded memory, cache-sized work)
-----------------------------------------
The batch is sorted by ``K_b`` and cut into chunks of samples, and each chunk's
ranks into blocks, so that one block of potentials (ranks x samples x neurons)
holds about ``chunk_bytes`` (default :data:`CHUNK_BYTES`, a size that stays in
the CPU cache). The running sum carries the last potential of a block into the
next, and a chunk stops as soon as every neuron of every sample in it has fired
or run out of events. Memory is therefore bounded whatever the batch, samples
are padded only to their chunk's most distinct steps, and the result does not
depend on the chunking: every potential is the same sum, added in the same
order (each increment sums its inputs in index order; the running sum adds the
increments in step order), in float32 as in float64. The loops over chunks and
blocks are the only Python loops besides the one over layers; nothing loops over
single samples, neurons or time steps.

Weight banks
------------
``weights`` may also be a *bank* of ``C`` weight matrices, shape
``(C, n_in, n_out)``, with ``bank`` (batch,) choosing the matrix of each sample
(e.g. one network per class: :mod:`training.gan` with ``per_class``). The
event matrix then gets ``C * n_in`` columns, sample ``b``'s events in block
``bank[b]``, and is multiplied by the bank flattened to ``(C * n_in, n_out)``:
one sparse product for the whole chunk, at the cost of a single network.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .neuron import THRESHOLD_EPS_MV, NeuronParams
from .resources import synapse_count

#: Default size in bytes of one block of membrane potentials (ranks x samples x
#: neurons): small enough for the CPU cache, large enough that NumPy's per-call
#: overhead does not matter. Peak memory of a layer is a small multiple of it
#: plus the layer's input and output spike times.
CHUNK_BYTES = 1 << 20

#: Ranks per block aimed at when choosing how many samples a chunk holds (the running sum
#: costs this many multiply-adds per potential).
_BLOCK_RANKS = 16

#: Weights R, R - 1, ..., 1 of the ranks of a block (the last R of them for a block of R ranks).
_RANK_WEIGHTS = np.arange(_BLOCK_RANKS, 0, -1, dtype=np.int16)

#: At most this many (sample, input) pairs per chunk: bounds the event arrays of a chunk
#: (~40 bytes per input spike) when few output neurons would allow very many samples.
_CHUNK_INPUTS = 1 << 20

#: Samples whose distinct steps are counted at once when sorting a batch by them.
_COUNT_ROWS = 4096


@dataclass
class LayerEvents:
    """The input spikes of one layer inside the window, kept for the backward pass.

    Events are sorted by sample, then input neuron.

    Attributes
    ----------
    sample, neuron : int arrays (n_events,)
        Per input spike: its sample and input neuron.
    time : int32 array (n_events,)
        Per input spike: its step (``< t_max - latency``).
    column : int array (n_events,)
        Per input spike: its row of the flattened weights (``neuron`` without a
        weight bank, ``bank[sample] * n_in + neuron`` with one).
    batch : int
        Samples in the batch.
    bank : int array (batch,) or None
        The weight matrix of each sample (see "Weight banks" above).
    dtype : numpy dtype
        Accumulation precision of the forward pass (the backward pass sums the
        weight gradients in the wider of it and the error's dtype).
    """

    sample: np.ndarray
    neuron: np.ndarray
    time: np.ndarray
    column: np.ndarray
    batch: int
    bank: np.ndarray | None = None
    dtype: type = np.float32


def check_bank(weights: np.ndarray, bank: np.ndarray | None, batch: int) -> np.ndarray | None:
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


def layer_events(t_in: np.ndarray, horizon: int, bank: np.ndarray | None = None,
                 dtype=np.float32) -> LayerEvents:
    """The input spikes before ``horizon`` of a batch ``t_in`` (batch, n_in), for the backward pass.

    With ``bank`` (batch,), sample ``b``'s events use column block ``bank[b]`` of
    the flattened weight bank.
    """
    t_in = np.asarray(t_in)
    batch, n_in = t_in.shape
    b_ev, i_ev = np.nonzero(t_in < horizon)
    column = i_ev if bank is None else bank[b_ev] * n_in + i_ev
    return LayerEvents(b_ev, i_ev, t_in[b_ev, i_ev].astype(np.int32), column, batch, bank, dtype)


#: BLAS threads of the products of the kernel and of training (:func:`pinned_blas_threads`): 1
#: unless a run asks for more (:func:`blas_threads`, ``train.threads``). Process-wide, as
#: BLAS's own thread count is.
_THREADS = [1]


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    """The BLAS libraries loaded (numpy's OpenBLAS) as threadpoolctl controls them; () without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency of the project (and of scikit-learn)
        return ()
    return tuple(lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas")


class _Pinned:
    """Context: every BLAS library at ``_THREADS[0]`` threads inside, as it was after.

    A library already at that count is left alone, so a block nested in :func:`blas_threads`
    costs one ``get_num_threads`` call per library (~1 us; threadpoolctl's ``limit`` context
    re-reads every library's state: ~20-70 us, several times per training step).
    """

    __slots__ = ("changed",)

    def __enter__(self):
        n = _THREADS[0]
        self.changed = [(lib, old) for lib in _blas_libraries() if (old := lib.get_num_threads()) != n]
        for lib, _ in self.changed:
            lib.set_num_threads(n)
        return self

    def __exit__(self, *exc):
        for lib, old in self.changed:
            lib.set_num_threads(old)
        return False


def pinned_blas_threads() -> _Pinned:
    """Context in which BLAS (numpy's matmul) uses the pinned thread count: one thread unless
    inside :func:`blas_threads`.

    One thread makes the sums the same on every machine (GAN training amplifies any last-bit
    change; OpenBLAS's threaded kernels add in another order and differ between thread counts).
    The kernel's products are small (one block of ranks at a time), so a second BLAS thread
    gains little there, and on a busy machine a BLAS thread that waits for a core makes every
    product 10-30x slower (measured: 0.25 ms -> 6 ms for a 16 x 16 x 16,384 product with other
    jobs running on 2 cores).
    """
    return _Pinned()


@contextlib.contextmanager
def blas_threads(n: int):
    """Context in which every product (inside and outside :func:`pinned_blas_threads`) uses ``n``
    BLAS threads: ``train.threads``. Results are the same for the same ``n`` on one machine
    (OpenBLAS splits a product among its threads in a fixed way), not across thread counts or
    machines; ``n = 1`` is the default pinning."""
    if int(n) < 1:
        raise ValueError(f"BLAS threads must be at least 1, got {n}")
    old = _THREADS[0]
    _THREADS[0] = int(n)
    try:
        with _Pinned():
            yield
    finally:
        _THREADS[0] = old


def running_sum(inc: np.ndarray) -> np.ndarray:
    """Cumulative sum over axis 0 of ``inc`` (k, m), in place, every column added strictly in row order.

    One vectorised add per row (``k`` is one block of ranks, at most :data:`_BLOCK_RANKS`), so
    the bits are those of ``np.cumsum`` on every machine: ``tests/test_performance.py``
    checks this on random data and shapes. (``benchmarks/bench_running_sum.py``: 1.4-4.2x
    faster than a product with the lower-triangular matrix of ones, which was used before and
    whose float32 BLAS kernel adds in order on some CPUs but not on others (OpenBLAS 0.3.30's
    Haswell kernel on an AMD EPYC, from 8 rows on), and 7-25x faster than
    ``np.cumsum(axis=0)``.)
    """
    for r in range(1, len(inc)):
        np.add(inc[r], inc[r - 1], out=inc[r])
    return inc


def distinct_steps(t_in: np.ndarray, horizon: int) -> np.ndarray:
    """Number of distinct steps ``< horizon`` among each sample's input spikes, int (batch,)."""
    t_in = np.asarray(t_in)
    out = np.empty(len(t_in), dtype=np.int64)
    rows = np.arange(min(_COUNT_ROWS, len(t_in)))[:, None] * (horizon + 1)
    for s in range(0, len(t_in), _COUNT_ROWS):
        t = np.minimum(t_in[s:s + _COUNT_ROWS], horizon)
        present = np.zeros(len(t) * (horizon + 1), dtype=bool)
        present[rows[:len(t)] + t] = True
        out[s:s + len(t)] = np.count_nonzero(present.reshape(len(t), horizon + 1)[:, :horizon], axis=1)
    return out


def stable_argsort(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for integer keys in ``0 .. n_keys - 1``.

    NumPy sorts 16-bit keys with a radix sort (~10x faster than its merge sort
    on 32-bit keys), so larger keys are sorted in two stable 16-bit passes.
    """
    if n_keys <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    if n_keys > 1 << 32:  # pragma: no cover - a chunk never has that many rows
        return np.argsort(keys, kind="stable")
    keys = keys.astype(np.uint32, copy=False)
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")]


def _chunk_forward(t_in: np.ndarray, w_flat: np.ndarray, threshold, horizon: int, latency: int,
                   bank: np.ndarray | None, n_in: int, block_ranks: int, t_out: np.ndarray) -> None:
    """Spike times of a chunk of samples, written into ``t_out`` (chunk, n_out) (see module docstring).

    ``threshold`` is the already guarded threshold in ``w_flat``'s dtype; ``block_ranks``
    ranks of the chunk's samples are integrated at a time.
    """
    C = len(t_in)
    n_out = w_flat.shape[1]
    spiking = t_in < horizon
    flat = np.flatnonzero(spiking)  # the input spikes, sorted by sample, then input
    if not flat.size:
        return
    b_ev = np.repeat(np.arange(C, dtype=np.int32), np.count_nonzero(spiking, axis=1))
    step = t_in.ravel()[flat].astype(np.int32)
    # rank of every spike's step among its sample's distinct steps
    slot = b_ev * np.int32(horizon) + step
    present = np.zeros(C * horizon, dtype=bool)
    present[slot] = True
    rank_of = np.cumsum(present.reshape(C, horizon), axis=1, dtype=np.int32).ravel()  # rank + 1
    n_ranks = rank_of[horizon - 1::horizon]  # distinct steps of each sample
    K = int(n_ranks.max())
    groups = np.flatnonzero(present)  # every (sample, step) group
    g_b = groups // horizon
    group_time = np.full((K, C), horizon, dtype=np.int32)  # padding ranks: never a crossing
    group_time[rank_of[groups] - 1, g_b] = groups - g_b * horizon
    # the event matrix, one row per (rank, sample), columns ascending within a row (int32
    # indices: scipy then skips scanning them for their range)
    row = (rank_of[slot] - 1) * np.int32(C) + b_ev
    order = stable_argsort(row, K * C)  # keeps the input order within a row
    column = flat - b_ev * n_in if bank is None else bank[b_ev] * n_in + (flat - b_ev * n_in)
    indptr = np.zeros(K * C + 1, dtype=np.int32)
    np.cumsum(np.bincount(row, minlength=K * C), out=indptr[1:])
    indices = column[order].astype(np.int32)
    data = np.ones(flat.size, dtype=w_flat.dtype)
    n_cols = w_flat.shape[0]

    pending = np.ones(C * n_out, dtype=bool)  # not fired yet and still has events to come
    carry = None
    for r0 in range(0, K, block_ranks):
        r1 = min(K, r0 + block_ranks)
        a, b = indptr[r0 * C], indptr[r1 * C]
        m = sp.csr_matrix((data[a:b], indices[a:b], indptr[r0 * C:r1 * C + 1] - a),
                          shape=((r1 - r0) * C, n_cols))
        inc = np.asarray(m @ w_flat).reshape(r1 - r0, C * n_out)
        if carry is not None:
            inc[0] += carry
        v = running_sum(inc)  # (ranks, sample * n_out + neuron)
        carry = v[-1]
        # first crossing in the block: R - max_r([v_r >= theta] * (R - r)); 0 = none
        score = ((v >= threshold) * _RANK_WEIGHTS[-(r1 - r0):, None]).max(axis=0)
        cells = np.flatnonzero((score > 0) & pending)
        if cells.size:
            first = r0 + (r1 - r0) - score[cells]
            t_out.ravel()[cells] = group_time[first, cells // n_out] + latency
            pending[cells] = False
        pending.reshape(C, n_out)[n_ranks <= r1] = False  # no events left
        if not pending.any():
            break


def layer_forward(t_in: np.ndarray, weights: np.ndarray, threshold: float, t_max: int,
                  latency: int = 1, dtype=np.float32, return_events: bool = False,
                  bank: np.ndarray | None = None, chunk_bytes: int | None = None,
                  strict: bool = False):
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
    chunk_bytes : int, optional
        Size in bytes of one block of potentials (default :data:`CHUNK_BYTES`);
        any value gives the same spike times, it only trades memory for calls.
    strict : bool
        Fire on ``V > threshold`` exactly in ``dtype`` (the S4NN reference's test) instead of
        ``V >= threshold - EPS`` (:mod:`models.neuron`).

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
    w_flat = np.ascontiguousarray(np.asarray(weights, dtype=dtype).reshape(n_banks * n_in, n_out))
    if strict:  # V > threshold  <=>  V >= the next representable value above it
        theta = np.nextafter(np.asarray(threshold, dtype=w_flat.dtype), np.asarray(np.inf, dtype=w_flat.dtype))
    else:
        theta = np.asarray(threshold - THRESHOLD_EPS_MV, dtype=w_flat.dtype)
    cell = max(1, n_out * w_flat.itemsize)  # bytes of one (rank, sample) row of potentials
    budget = max(int(CHUNK_BYTES if chunk_bytes is None else chunk_bytes), cell)
    if batch and horizon > 0 and n_out:
        # chunks of samples with similar numbers of distinct steps (little padding)
        order = np.argsort(distinct_steps(t_in, horizon), kind="stable")
        per_chunk = int(np.clip(min(budget // (cell * _BLOCK_RANKS), _CHUNK_INPUTS // max(n_in, 1)), 1, batch))
        block_ranks = int(np.clip(budget // (cell * per_chunk), 1, _BLOCK_RANKS))
        with pinned_blas_threads():
            for s in range(0, batch, per_chunk):
                idx = order[s:s + per_chunk]
                out = np.full((len(idx), n_out), t_max, dtype=np.int32)
                _chunk_forward(t_in[idx], w_flat, theta, horizon, latency,
                               None if bank is None else bank[idx], n_in, block_ranks, out)
                t_out[idx] = out
    if return_events:
        return t_out, layer_events(t_in, horizon, bank, w_flat.dtype.type)
    return t_out


def forward_bytes(sizes: Sequence[int], batch: int) -> int:
    """Peak memory of :func:`forward` on ``batch`` samples through layers ``sizes`` (bytes):
    the spike times of every layer (int32), the float32 weights and one chunk of potentials."""
    synapses = synapse_count(sizes)
    return 4 * batch * sum(sizes) + 4 * synapses + 2 * CHUNK_BYTES


def forward(weights: Sequence[np.ndarray], t_in: np.ndarray, params: NeuronParams,
            dtype=np.float32, bank: np.ndarray | None = None,
            chunk_bytes: int | None = None) -> list[np.ndarray]:
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
    chunk_bytes : int, optional
        Block size of :func:`layer_forward` (memory only; same spike times).

    Returns
    -------
    times : list of int32 arrays (batch, n_k), k = 1 .. L
    """
    if len(weights) != params.n_layers:
        raise ValueError(f"{len(weights)} weight matrices but {params.n_layers} thresholds")
    times = []
    t = np.asarray(t_in)
    for w, theta in zip(weights, params.thresholds):
        t = layer_forward(t, w, theta, params.t_max, params.latency, dtype, bank=bank,
                          chunk_bytes=chunk_bytes, strict=params.strict)
        times.append(t)
    return times
