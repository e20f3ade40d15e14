"""Time-to-first-spike (TTFS) coding: values <-> spike times.

All functions are vectorised over a batch and pure. Spike times are integer
steps in ``[0, t_max]``; ``t_max`` is "no spike" (see :mod:`models.neuron`).
"""
from __future__ import annotations

import numpy as np


def encode_images(images: np.ndarray, t_max: int) -> np.ndarray:
    """Encode 8-bit intensities as spike times (S4NN).

    ``t = floor((255 - p) * t_max / 255)``: white (255) spikes at step 0,
    black (0) at ``t_max``, i.e. never.

    Parameters
    ----------
    images : array (batch, ...) of uint8 or numbers in [0, 255]
    t_max : int
        Window length in steps.

    Returns
    -------
    times : int32 array (batch, n_pixels), flattened per sample.
    """
    x = np.asarray(images)
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255):
        raise ValueError("pixel values must be finite and in [0, 255]")
    p = x.reshape(len(x), -1).astype(np.int64)
    return ((255 - p) * t_max // 255).astype(np.int32)


def encode_values(values: np.ndarray, t_max: int) -> np.ndarray:
    """Encode values in [0, 1] (noise, generated images) like pixels.

    ``t = floor((1 - z) * t_max)``, clipped to ``[0, t_max]``: ``z = 1`` spikes at
    step 0 and ``z = 0`` never spikes.

    Parameters
    ----------
    values : float array (batch, ...) in [0, 1]
    t_max : int

    Returns
    -------
    times : int32 array (batch, n)
    """
    z = np.asarray(values, dtype=np.float64)
    z = z.reshape(len(z), -1)
    if not np.all(np.isfinite(z)):
        raise ValueError("values to encode must be finite")
    return np.clip(np.floor((1.0 - z) * t_max), 0, t_max).astype(np.int32)


def sample_noise_times(rng: np.random.Generator, batch: int, n: int, t_max: int) -> np.ndarray:
    """Draw the GAN prior ``z ~ U(0, 1)^n`` and encode it (int32 (batch, n))."""
    return encode_values(rng.random((batch, n)), t_max)


def decode_times(times: np.ndarray, t_max: int) -> np.ndarray:
    """Decode spike times into intensities ``x = 1 - t / t_max`` in [0, 1].

    No spike (``t = t_max``) decodes to 0 (black).

    Returns
    -------
    x : float32 array, same shape as ``times``.
    """
    t = np.asarray(times, dtype=np.float32)
    return np.clip(1.0 - t / np.float32(t_max), 0.0, 1.0).astype(np.float32)


def decide(t_out: np.ndarray, t_max: int):
    """The strict first-spike decision of an output layer (D's verdict, the classifier's accuracy).

    The output neuron that fires first wins; when several fire first at the same
    step, the lowest index wins (for D: *real*); when none fires, there is no
    decision (winner -1, time ``t_max``). The S4NN reference code scores more leniently:
    :func:`s4nn_readout_correct`.

    Parameters
    ----------
    t_out : int array (batch, n_out), output spike times (``t_max`` = none)
    t_max : int

    Returns
    -------
    winner : int array (batch,), index of the winning output neuron, -1 if none fired
    t_first : int array (batch,), decision time in steps (``t_max`` if none)
    """
    t_out = np.asarray(t_out)
    t_first = t_out.min(axis=1)
    return np.where(t_first < t_max, t_out.argmin(axis=1), -1), t_first


#: Steps before the end of the window at which the S4NN reference reads a silent output layer.
S4NN_LATE_READ_STEPS = 3


def s4nn_readout_correct(t_out: np.ndarray, t_hidden: np.ndarray, w_out: np.ndarray,
                         labels: np.ndarray, t_max: int, latency: int = 1) -> np.ndarray:
    """Which samples the S4NN reference code (SRKH/S4NN, ``S4NN.py``) scores as correct.

    Two rules differ from :func:`decide`: a tie is correct when the label is *among* the
    output neurons that fire first, and a sample with no output spike is read by the output
    neuron with the highest potential :data:`S4NN_LATE_READ_STEPS` steps before the end of
    the window (``V_k(t_max - 3) = sum_i w_ik [t_i + latency - 1 <= t_max - 3]``; the
    reference's ``argmax(Voltage[:, tmax - 3])``, lowest index on ties).

    Parameters
    ----------
    t_out : int array (batch, n_out), output spike times (``t_max`` = none)
    t_hidden : int array (batch, n_hidden), spike times of the layer feeding the output
    w_out : array (n_hidden, n_out), the output weights, mV
    labels : int array (batch,)
    t_max, latency : int

    Returns
    -------
    correct : bool array (batch,)
    """
    t_out, labels = np.asarray(t_out), np.asarray(labels)
    rows = np.arange(len(t_out))
    t_first = t_out.min(axis=1)
    correct = t_out[rows, labels] == t_first
    silent = t_first >= t_max
    if silent.any():
        arrived = np.asarray(t_hidden)[silent] + latency - 1 <= t_max - S4NN_LATE_READ_STEPS
        v_late = arrived.astype(np.float64) @ np.asarray(w_out, np.float64)
        correct[silent] = v_late.argmax(axis=1) == labels[silent]
    return correct


def jitter_times(rng: np.random.Generator, t: np.ndarray, std: float, t_max: int) -> np.ndarray:
    """Instance noise on spike times: each spike moved by a rounded Gaussian of ``std`` steps.

    Spikes stay inside the window (clipped to ``0 .. t_max - 1``); silent neurons
    (``t = t_max``) stay silent.

    Parameters
    ----------
    rng : numpy Generator
    t : int array, spike times in steps (``t_max`` = none)
    std : float, steps
    t_max : int

    Returns
    -------
    int32 array like ``t``
    """
    t = np.asarray(t)
    moved = np.clip(np.rint(t + rng.normal(0.0, std, t.shape)), 0, t_max - 1)
    return np.where(t < t_max, moved, t_max).astype(np.int32)
