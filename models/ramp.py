"""NumPy kernel of the windowed ramp IF neuron (:data:`models.neuron.RAMP_EQUATIONS`).

The model and its discrete-time semantics are defined in :mod:`models.neuron`
(section "Windowed ramp neuron"); this module only simulates them. Because a
ramp neuron's potential is piecewise linear with breakpoints at its input spike
times, and its slope is clamped to one unit per step once its output window
opens, the first spike of a whole layer has a closed form: with the earliness
``x = T - t`` (``T`` = ``t_max``, 0 = no spike) of the layer's inputs,

    V_j(window opening + s) = sum_i w_ij x_i + s * r            (r = 1 mV per step)
    x_j = clip(floor(a_j + EPS), 0, T),   a_j = T - theta_j + sum_i w_ij x_i     (steps)

i.e. the layer is exactly a ReLU layer clipped at ``T`` (Stanojevic et al.,
Nat. Commun. 15:6793, 2024), followed by the clock's quantisation to whole
steps. Simulating a layer is one matrix product over the batch: no time loop,
and the cost does not depend on how many spikes there are. ``a`` (the
*pre-activation*, in steps) is kept for the exact gradient
(:mod:`training.exact`).

Spike times are reported per layer *relative to the layer's own window*, as
for the IF kernel: ``t`` in ``0 .. T - 1`` for a spike, ``T`` for none. Layer
``k`` (1-based) fires in the global steps ``k T .. (k + 1) T - 1``
(:meth:`models.neuron.RampNeuron.window_start`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .neuron import THRESHOLD_EPS_MV


def earliness(t: np.ndarray, t_max: int) -> np.ndarray:
    """``x = T - t``: steps before the window's end (0 = no spike), same dtype as ``t``."""
    return t_max - np.asarray(t)


def pre_activation(x_in: np.ndarray, w: np.ndarray, theta: np.ndarray, t_max: int,
                   dtype=np.float32) -> np.ndarray:
    """``a = T - theta + x_in @ w``, (batch, n_out), in steps (see module docstring).

    Parameters
    ----------
    x_in : int or float array (batch, n_in), the inputs' earliness in steps
    w : array (n_in, n_out), mV per step of earliness
    theta : array (n_out,), thresholds in mV
    t_max : int, window length T in steps
    """
    x = np.asarray(x_in, dtype=dtype)
    return (np.asarray(t_max - np.asarray(theta, dtype=np.float64), dtype=dtype)
            + x @ np.asarray(w, dtype=dtype))


def quantised_earliness(a: np.ndarray, t_max: int) -> np.ndarray:
    """``clip(floor(a + EPS), 0, T)`` in ``a``'s float type: whole steps, exact (one new array)."""
    x = np.add(a, THRESHOLD_EPS_MV)
    np.floor(x, out=x)
    return np.clip(x, 0, t_max, out=x)


def quantise(a: np.ndarray, t_max: int) -> np.ndarray:
    """Earliness of the first spike: ``clip(floor(a + EPS), 0, T)`` as int32 (the clock's ceiling)."""
    return quantised_earliness(a, t_max).astype(np.int32)


def layer_forward(x_in: np.ndarray, w: np.ndarray, theta: np.ndarray, t_max: int,
                  dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """One layer: output earliness (int32 (batch, n_out)) and pre-activation ``a`` (float)."""
    a = pre_activation(x_in, w, theta, t_max, dtype)
    return quantise(a, t_max), a


def forward(weights: Sequence[np.ndarray], thetas: Sequence[np.ndarray], t_in: np.ndarray, t_max: int,
            dtype=np.float64) -> list[np.ndarray]:
    """Spike times of every layer of a ramp network (float64 by default; training runs the
    float32 :func:`training.exact.forward_trace`).

    Unlike :func:`models.kernel.forward` (one threshold per layer, in ``NeuronParams``) a
    ramp layer has a threshold per neuron, given as ``thetas``.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1}), mV per step
    thetas : sequence of arrays (n_{k+1},), per-neuron thresholds in mV
    t_in : int array (batch, n_0), input spike times in steps (``t_max`` = none)
    t_max : int
    dtype : float type of the potentials (float64 matches Brian2 bit for bit on
        weights whose partial sums are exact)

    Returns
    -------
    times : list of int32 arrays (batch, n_k), k = 1..L, each relative to its layer's window
    """
    if len(weights) != len(thetas):
        raise ValueError(f"{len(weights)} weight matrices but {len(thetas)} threshold vectors")
    x = earliness(np.asarray(t_in), t_max)
    times = []
    for w, theta in zip(weights, thetas):
        x, _ = layer_forward(x, w, theta, t_max, dtype)
        times.append((t_max - x).astype(np.int32))
    return times
