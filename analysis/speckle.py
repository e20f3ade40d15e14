"""Speckle of generated digits: lit pixels that stand alone.

Real pen strokes are connected: in the embedded test digits only 0.18 % of the lit pixels
(intensity > 0.5) have at most one lit pixel among their 8 neighbours, and about 0.01 % have
none. A spiking G that carries noise from its input or from D's weights scatters isolated
pixels around its strokes; the fraction of such pixels among the lit ones measures that,
independently of the classifier (classifier-FID and the within-class diversity, which blurs
the images, are both nearly blind to it).

Two measures, one definition (:func:`speckle`, lit pixels with at most ``k`` lit 8-neighbours):
``speckle`` (``k = 1``: stroke ends and lone pixels) and ``isolated`` (``k = 0``: lone lit
pixels only, :func:`isolated`).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve

#: A pixel is lit above this intensity.
LIT = 0.5
#: ... and counts as speckle with at most this many lit 8-neighbours.
MAX_NEIGHBOURS = 1

_NEIGHBOURS = np.ones((1, 3, 3), np.int32)
_NEIGHBOURS[0, 1, 1] = 0


def speckle(images01: np.ndarray, lit: float = LIT, max_neighbours: int = MAX_NEIGHBOURS) -> float:
    """Fraction of lit pixels with at most ``max_neighbours`` lit 8-neighbours.

    Parameters
    ----------
    images01 : float array (n, 28, 28) or (n, 784), intensities in [0, 1]
    lit : intensity above which a pixel counts as lit
    max_neighbours : int in 0..8; 1 (default) counts stroke ends too, 0 only lone pixels

    Returns
    -------
    float in [0, 1] (0 when no pixel is lit); real digits about 0.002 (``max_neighbours=1``)
    """
    if not 0 <= int(max_neighbours) <= 8:
        raise ValueError(f"max_neighbours must be in 0..8, got {max_neighbours}")
    on = np.asarray(images01).reshape(len(images01), 28, 28) > lit
    n_lit = int(on.sum())
    if n_lit == 0:
        return 0.0
    neighbours = convolve(on.astype(np.int32), _NEIGHBOURS, mode="constant")
    return float((on & (neighbours <= int(max_neighbours))).sum() / n_lit)


def isolated(images01: np.ndarray, lit: float = LIT) -> float:
    """Fraction of lit pixels with no lit 8-neighbour (:func:`speckle` with ``max_neighbours=0``).

    Parameters
    ----------
    images01 : float array (n, 28, 28) or (n, 784), intensities in [0, 1]
    lit : intensity above which a pixel counts as lit

    Returns
    -------
    float in [0, 1] (0 when no pixel is lit); real digits about 0.0001
    """
    return speckle(images01, lit, max_neighbours=0)
