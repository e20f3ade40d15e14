import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def dyadic_weights(rng, sizes, low=-1.5, high=2.0, step=2.0 ** -8):
    """Random weights on a dyadic grid: every partial sum is exact in float32 and float64."""
    return [np.round(rng.uniform(low, high, (a, b)) / step) * step
            for a, b in zip(sizes[:-1], sizes[1:])]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
