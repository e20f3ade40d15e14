"""Shared fixtures (the package is installed: no path set-up here)."""
import os

import numpy as np
import pytest


def _dyadic_weights(rng, sizes, low=-1.5, high=2.0, step=2.0 ** -8):
    """Random weights on a dyadic grid: every partial sum is exact in float32 and float64."""
    return [np.round(rng.uniform(low, high, (a, b)) / step) * step
            for a, b in zip(sizes[:-1], sizes[1:])]


@pytest.fixture
def dyadic_weights():
    """``dyadic_weights(rng, sizes, low, high)``: random weights whose partial sums are exact."""
    return _dyadic_weights


@pytest.fixture(scope="session", autouse=True)
def digit_cache(tmp_path_factory):
    """Point the digit cache (training.data.cache_dir) into a temporary folder, not the user's."""
    folder = str(tmp_path_factory.mktemp("spiking-gan-cache"))
    old = os.environ.get("SPIKING_GAN_CACHE")
    os.environ["SPIKING_GAN_CACHE"] = folder
    yield folder
    if old is None:
        os.environ.pop("SPIKING_GAN_CACHE", None)
    else:
        os.environ["SPIKING_GAN_CACHE"] = old


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
