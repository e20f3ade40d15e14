"""Weights of a layered TTFS network: initialisation and checks."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np


def check_weights(weights: Sequence[np.ndarray], sizes: Sequence[int] | None = None) -> None:
    """Raise ``ValueError`` if weights are not finite 2-D matrices that chain.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1})
    sizes : layer sizes ``(n_0, ..., n_L)`` the weights must have, optional
    """
    for k, w in enumerate(weights):
        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"weights_{k} must be a 2-D matrix, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"weights_{k} contains NaN or infinite values")
        if k and w.shape[0] != weights[k - 1].shape[1]:
            raise ValueError(f"weights_{k} has {w.shape[0]} inputs but layer {k} has "
                             f"{weights[k - 1].shape[1]} neurons")
    if sizes is not None:
        got = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        if list(got) != list(sizes):
            raise ValueError(f"weights have layer sizes {got}, expected {list(sizes)}")


def parse_layers(text: str) -> List[int]:
    """Parse ``"784,400,2"`` into layer sizes; at least two positive sizes."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"layer sizes must be comma-separated integers like 784,400,2, got {text!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"need at least two positive layer sizes, got {text!r}")
    return sizes


def init_uniform(rng: np.random.Generator, sizes: Sequence[int],
                 ranges: Sequence[Tuple[float, float]], dtype=np.float32) -> List[np.ndarray]:
    """Weights drawn uniformly in ``ranges[k]`` (mV) for layer k (S4NN init).

    Parameters
    ----------
    rng : numpy Generator
    sizes : layer sizes ``(n_0, ..., n_L)``
    ranges : one ``(low, high)`` per weight matrix
    """
    if len(ranges) != len(sizes) - 1:
        raise ValueError(f"{len(ranges)} weight ranges for {len(sizes) - 1} layers")
    return [rng.uniform(lo, hi, (a, b)).astype(dtype)
            for (a, b), (lo, hi) in zip(zip(sizes[:-1], sizes[1:]), ranges)]


def default_ranges(n_layers: int, hidden: Tuple[float, float] = (0.0, 5.0),
                   output: Tuple[float, float] = (0.0, 48.0)) -> List[Tuple[float, float]]:
    """S4NN's initial weight ranges: hidden layers in [0, 5], output in [0, 48] mV."""
    return [hidden] * (n_layers - 1) + [output]
