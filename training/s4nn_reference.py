"""S4NN exactly as its published code trains it (SRKH/S4NN, ``S4NN.py``): the reference rule.

``spiking-gan classify`` trains with the batched rule of :mod:`training.backprop` by
default (mini-batches, float32, shuffled epochs). ``train.rule = "reference"``
(``configs/s4nn_reference.toml``) trains with this module instead, which follows the
published code step for step, so that its runs can be replayed there
(:func:`training.classifier.run_classifier` writes ``replay.npz``):

- **initialisation** from NumPy's legacy generator, ``np.random.seed(seed)``, the hidden
  matrix drawn first as ``(n_hidden, n_in)`` then the output matrix as ``(n_out, n_hidden)``
  (the reference's ``random_sample`` calls; stored here transposed, ``(n_in, n_out)``);
- **one image per update, in data order** (no shuffling), float64 weights and potentials,
  the strict threshold test ``V > thr`` (``neuron.strict_threshold``);
- **order of operations** for each image, from the output layer down::

      delta_L = e / ||e||,                            e = (T - t) / t_max
      W_k    -= lr_k * delta_k[out] * [t_in < t_out]  (mask with the layer's own times)
      W_k    -= lr_k * lambda * W_k                   (decay of the already updated W_k)
      delta_{k-1}[in] = sum_out delta_k * [t_in < t_out] * W_k  (the *updated* W_k)
      delta_{k-1} /= ||delta_{k-1}||

  The mask is taken on the spike times themselves: a hidden spike at ``t_max - 1`` into an
  output that never fired (``t_max``) counts, which the event-driven batched rule leaves out.
- **dead neurons**: a hidden neuron that fired on fewer than ``train.dead_min_rate`` of an
  epoch's images gets new input weights from the same legacy generator, one neuron after the
  other in index order, after the epoch's evaluation.

The readout of the reference (a tie counts as correct when the label is among the first to
fire; a silent output layer is read by its potential three steps before the end) is
:func:`models.coding.s4nn_readout_correct`; both it and the strict readout are reported.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.kernel import forward
from models.neuron import NeuronParams
from training.losses import earliest_output_time, targets


def init_weights(seed: int, sizes: Sequence[int], ranges: Sequence[tuple[float, float]]):
    """The reference's initial weights and the legacy generator that drew them.

    Parameters
    ----------
    seed : int, ``np.random.seed`` of the reference
    sizes : layer sizes ``(n_0, ..., n_L)``
    ranges : one ``(low, high)`` per weight matrix, mV

    Returns
    -------
    weights : list of float64 arrays (n_k, n_{k+1}), mV
    rng : numpy.random.RandomState, to be used for the dead-neuron re-draws
    """
    rng = np.random.RandomState(seed)
    weights = [np.ascontiguousarray(((hi - lo) * rng.random_sample((n_out, n_in)) + lo).T)
               for (n_in, n_out), (lo, hi) in zip(zip(sizes[:-1], sizes[1:]), ranges)]
    return weights, rng


def _normalised(delta: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(delta)
    return delta / norm if norm != 0 else delta


def train_image(weights: list[np.ndarray], t_in: np.ndarray, label: int, params: NeuronParams,
                lr: Sequence[float], l2: float, loss) -> list[np.ndarray]:
    """One update of the reference on one image, in place; returns the spike times before it.

    Parameters
    ----------
    weights : list of float64 arrays (n_k, n_{k+1}), updated in place
    t_in : int array (n_0,), the image's input spike times
    label : int
    params : NeuronParams (``strict`` for the reference's threshold test)
    lr : learning rate per layer; l2 : the decay lambda
    loss : LossConfig (``kind``, ``gamma``, ``alpha``, ``variant``)

    Returns
    -------
    times : list of int32 arrays (n_k,), k = 1 .. L, of the forward pass that was learned from
    e : float64 array (n_L,), the output error ``(T - t) / t_max`` before its normalisation
    """
    t_max = params.t_max
    times = [t[0] for t in forward(weights, t_in[None], params, dtype=np.float64)]
    below = [np.asarray(t_in)] + times[:-1]
    floor = earliest_output_time(below[-1][None], t_max, params.latency)
    T = targets(loss.kind, times[-1][None], np.array([label]), t_max, loss.gamma, loss.alpha,
                loss.variant, floor)[0].astype(np.float64)
    e = (T - times[-1]) / t_max
    delta = _normalised(e)
    for k in range(len(weights) - 1, -1, -1):
        w_t = weights[k].T  # (n_out, n_in), the reference's layout (a view)
        fired = below[k][None, :] + params.latency <= times[k][:, None]  # hasFired (n_out, n_in)
        w_t -= delta[:, None] * fired * lr[k]
        w_t -= lr[k] * l2 * w_t
        if k:
            delta = _normalised((delta[:, None] * fired * w_t).sum(axis=0))
    return times, e


def redraw_dead(weights: list[np.ndarray], counts: Sequence[np.ndarray], n_images: int, min_rate: float,
                ranges: Sequence[tuple[float, float]], rng: np.random.RandomState) -> list[int]:
    """The reference's dead-neuron rule: hidden neurons that fired on fewer than
    ``min_rate * n_images`` images get new input weights, one after the other; returns how many
    per hidden layer."""
    revived = []
    for k, c in enumerate(counts):
        dead = np.flatnonzero(c < min_rate * n_images)
        lo, hi = ranges[k]
        for j in dead:  # in index order, one draw each: the reference's sequence of draws
            weights[k][:, j] = (hi - lo) * rng.random_sample(weights[k].shape[0]) + lo
        revived.append(int(dead.size))
    return revived
