"""Shared fixtures (the package is installed: no path set-up here).

Paths and plain helpers (the tiny configs, ``tiny()``, ``snapshot``...) are in helpers.py;
what is expensive to build (trained tiny runs, the quality classifier) is made here once
per session.
"""
import os

import numpy as np
import pytest
from helpers import snapshot, tiny


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


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for a test (restored afterwards)."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.fixture(scope="session")
def digits(digit_cache):
    """The embedded digits (training.data.load_digits); read only."""
    from training.data import load_digits
    return load_digits()


@pytest.fixture(scope="session")
def clf(digits):
    """The quality classifier (analysis.quality) as get_classifier makes it for the embedded digits
    (seed 0, the default settings, all 4,000 training digits), trained once per session; read only."""
    from analysis import quality
    return quality.train_classifier(digits.train_images, digits.train_labels, seed=0)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, digit_cache):
    """``tiny_run(model="if", epochs=1)``: the folder of a finished run of the tiny config of
    ``model`` trained for ``epochs`` (``train_gan``, no epoch grids), trained once per session.

    Shared by every test that asks for it: read it, or copy it (``shutil.copytree``) before
    changing anything. The session ends with an error naming the run if a test changed one.
    """
    from training.trainer import train_gan

    runs = {}

    def get(model: str = "if", epochs: int = 1):
        if (model, epochs) not in runs:
            out = tmp_path_factory.mktemp(f"tiny-{model}-{epochs}") / "run"
            train_gan(tiny(model, **{"train.epochs": epochs}), str(out), progress=False)
            runs[model, epochs] = (out, snapshot(out))
        return runs[model, epochs][0]

    yield get
    changed = [str(out) for out, before in runs.values() if snapshot(out) != before]
    assert not changed, f"a test changed the shared run(s) {changed}: copy a tiny_run before changing it"
