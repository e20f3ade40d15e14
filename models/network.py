"""Weights of a layered TTFS network: initialisation and checks."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .neuron import NeuronParams


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


def parse_layers(text: str) -> list[int]:
    """Parse ``"784,400,2"`` into layer sizes; at least two positive sizes."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"layer sizes must be comma-separated integers like 784,400,2, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"need at least two positive layer sizes, got {text!r}")
    return sizes


def init_uniform(rng: np.random.Generator, sizes: Sequence[int],
                 ranges: Sequence[tuple[float, float]], dtype=np.float32) -> list[np.ndarray]:
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


def default_ranges(n_layers: int, hidden: tuple[float, float] = (0.0, 5.0),
                   output: tuple[float, float] = (0.0, 48.0)) -> list[tuple[float, float]]:
    """S4NN's initial weight ranges: hidden layers in [0, 5], output in [0, 48] mV."""
    return [hidden] * (n_layers - 1) + [output]


def fan_in_ranges(sizes: Sequence[int], hidden: tuple[float, float] = (0.0, 5.0),
                  output: tuple[float, float] = (0.0, 48.0)) -> list[tuple[float, float]]:
    """S4NN's ranges scaled to each layer's fan-in: random networks of any size fire.

    S4NN sized ``[0, 5]`` mV for 784 inputs and ``[0, 48]`` mV for 400 hidden neurons;
    a layer with ``n`` inputs gets the range times ``784 / n`` (hidden) or ``400 / n``
    (output), so the expected summed input per neuron is the same as in S4NN's network.
    """
    n_layers = len(sizes) - 1
    return [tuple(float(v) * (784 if k < n_layers - 1 else 400) / sizes[k]
                  for v in (hidden if k < n_layers - 1 else output)) for k in range(n_layers)]


def neuron_params(neuron, net) -> NeuronParams:
    """:class:`NeuronParams` of a network from its config sections (``neuron.t_max``, ``dt_ms``,
    ``latency``, ``strict_threshold`` and ``net.thresholds``, mV)."""
    return NeuronParams(tuple(net.thresholds), neuron.t_max, neuron.dt_ms, neuron.latency,
                        neuron.strict_threshold)


def init_ranges(net) -> list[tuple[float, float]]:
    """The uniform init range of every layer of a network config (``init_hidden``, ``init_output``)."""
    return [tuple(net.init_hidden)] * len(net.hidden) + [tuple(net.init_output)]


def init_network(rng: np.random.Generator, n_in: int, net, n_out: int) -> list[np.ndarray]:
    """Weights ``n_in -> net.hidden... -> n_out`` drawn from the config's uniform ranges (mV)."""
    return init_uniform(rng, [n_in, *net.hidden, n_out], init_ranges(net))
