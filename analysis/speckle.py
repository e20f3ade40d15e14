"""Speckle of generated digits: lit pixels that stand alone.

Real pen strokes are connected: in the embedded test digits only 0.18 % of the lit pixels
(intensity > 0.5) have at most one lit pixel among their 8 neighbours. A spiking G that
carries noise from its input or from D's weights scatters isolated pixels around its
strokes; the fraction of such pixels among the lit ones measures that, independently of
the classifier (classifier-FID and the within-class diversity, which blurs the images, are
both nearly blind to it).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve

#: A pixel is lit above this intensity.
LIT = 0.5
#: ... and isolated with at most this many lit 8-neighbours.
MAX_NEIGHBOURS = 1

_NEIGHBOURS = np.ones((1, 3, 3), np.int32)
_NEIGHBOURS[0, 1, 1] = 0


def speckle(images01: np.ndarray, lit: float = LIT) -> float:
    """Fraction of lit pixels with at most :data:`MAX_NEIGHBOURS` lit 8-neighbours.

    Parameters
    ----------
    images01 : float array (n, 28, 28) or (n, 784), intensities in [0, 1]
    lit : intensity above which a pixel counts as lit

    Returns
    -------
    float in [0, 1] (0 when no pixel is lit); real digits about 0.002
    """
    on = np.asarray(images01).reshape(len(images01), 28, 28) > lit
    n_lit = int(on.sum())
    if n_lit == 0:
        return 0.0
    neighbours = convolve(on.astype(np.int32), _NEIGHBOURS, mode="constant")
    return float((on & (neighbours <= MAX_NEIGHBOURS)).sum() / n_lit)
