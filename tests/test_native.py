"""The compiled loops (models/native.py, models/native.c) give the NumPy code's bits: Adam, the
col2im of a transposed convolution and the im2col of a strided one, on arbitrary float32 values;
they are built once into the cache folder, a damaged cached library is rebuilt, and without a
compiler the NumPy code runs (with a warning) and training gives the same results."""
import contextlib
import os
import shutil

import numpy as np
import pytest

from models import native, ramp
from training import exact

HAVE_CC = shutil.which(native._compiler()[0]) is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache folder and no library loaded yet in this process (restored after)."""
    monkeypatch.setenv("SPIKING_GAN_CACHE", str(tmp_path))
    monkeypatch.delenv(native.NATIVE_ENV, raising=False)
    old = list(native._LIB)
    native._LIB.clear()
    yield tmp_path
    native._LIB[:] = old


@needs_cc
def test_the_library_is_built_once_into_the_cache(fresh):
    lib = native.library()
    assert lib is not None and native.library() is lib
    path = native.library_path()
    assert path.startswith(str(fresh)) and os.path.isfile(path)
    assert [f for f in os.listdir(os.path.dirname(path))] == [os.path.basename(path)]  # no temporary left


@needs_cc
def test_a_damaged_cached_library_is_rebuilt(fresh):
    path = native.library_path()
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as fh:
        fh.write(b"not a shared library")
    assert native.library() is not None
    assert os.path.getsize(path) > 1000


def test_without_a_compiler_numpy_runs_with_a_warning(fresh, monkeypatch, rng):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    p = [rng.standard_normal((30, 7)).astype(np.float32)]
    g = [rng.standard_normal((30, 7)).astype(np.float32)]
    with pytest.warns(RuntimeWarning, match="could not be built with /nonexistent/cc"):
        assert native.library() is None
    want = [p[0].copy()]
    with native.disabled():
        exact.Adam.like(want).step(want, g, 1e-3)
    exact.Adam.like(p).step(p, g, 1e-3)  # no library: the NumPy path
    assert p[0].tobytes() == want[0].tobytes()


def test_switched_off_by_the_environment(fresh, monkeypatch):
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert native.library() is None
    assert not os.path.exists(native.library_path())


@needs_cc
@pytest.mark.parametrize("shape", [(100, 1568), (1568,), (32, 16, 4, 4), (1,), (257, 3)])
def test_adam_gives_the_numpy_bits(shape, rng):
    """Ten steps with gradients spanning many magnitudes (and zeros), all four arrays compared."""
    assert native.library() is not None
    p0 = rng.standard_normal(shape).astype(np.float32)
    grads = [(rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 2, shape)
              * (rng.random(shape) > 0.1)).astype(np.float32) for _ in range(10)]
    runs = []
    for compiled in (True, False):
        p = [p0.copy()]
        opt = exact.Adam.like(p)
        with (contextlib.nullcontext() if compiled else native.disabled()):
            for g in grads:
                opt.step(p, [g], 2e-4)
        runs.append([p[0], opt.m[0], opt.v[0]])
    for a, b in zip(*runs):
        assert a.tobytes() == b.tobytes()


GEOMETRIES = [((16, 14, 14), 32, 4, 2, 1), ((1, 28, 28), 16, 4, 2, 1), ((2, 8, 8), 3, 4, 2, 1),
              ((1, 9, 7), 2, 3, 2, 1), ((2, 6, 6), 2, 4, 2, 0), ((1, 5, 5), 2, 3, 1, 1),
              ((2, 10, 11), 3, 5, 3, 2)]


@needs_cc
@pytest.mark.parametrize("spec", GEOMETRIES, ids=lambda s: f"{s[0]}-{s[1]}k{s[2]}s{s[3]}p{s[4]}")
def test_conv_maps_give_the_numpy_bits(spec, rng):
    """The maps `up` (col2im), `down` and `kernel_grad` (im2col), compiled and NumPy, byte for byte."""
    assert native.library() is not None
    big, c_small, k, s, p = spec
    h, w = ((n + 2 * p - k) // s + 1 for n in big[1:])
    geo = ramp.ConvGeometry(big, (c_small, h, w), k, s, p)
    kernel = rng.standard_normal(geo.kernel_shape).astype(np.float32)
    x_big = rng.standard_normal((6, *big)).astype(np.float32)
    x_small = rng.standard_normal((6, c_small, h, w)).astype(np.float32)
    maps = (lambda: geo.up(x_small, kernel), lambda: geo.down(x_big, kernel),
            lambda: geo.kernel_grad(x_big, x_small), lambda: geo._columns(x_big))
    got = [f() for f in maps]
    with native.disabled():
        want = [f() for f in maps]
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
