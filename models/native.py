"""Compiled loops for the ramp model's training step, with the NumPy code as the fallback.

Three loops of ``models/native.c`` replace NumPy expressions that make many passes over memory:
the Adam update (:meth:`training.exact.Adam.step`, 11 float32 passes over four arrays), the
col2im of a transposed convolution and the im2col of a strided one
(:class:`models.ramp.ConvGeometry`). Each does the same float32 operations in the same order per
element, so the results are the same bits as NumPy's (``tests/test_native.py``); only the speed
differs. The source is compiled once per machine with the C compiler Brian2's cython target needs
already (``$CC``, else ``cc``; :data:`FLAGS`: ``-ffp-contract=off``, no fused multiply-add, which
would change the bits), into the user's cache folder (:func:`models.files.cache_dir`), atomically, so that
parallel workers never load half a library; it is loaded with :mod:`ctypes`.

Where it cannot be built (no compiler) or ``SPIKING_GAN_NATIVE=0`` is set, :func:`library`
returns None and the NumPy code runs: slower, the same results.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy as np

from .files import cache_dir

#: Environment variable: ``0`` disables the compiled loops (the NumPy code runs).
NATIVE_ENV = "SPIKING_GAN_NATIVE"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native.c")
FLAGS = ["-O3", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno"]

_F = ctypes.POINTER(ctypes.c_float)
_N = ctypes.c_size_t
_SIGNATURES = {
    "adam_f32": [_F, _F, _F, _F, _N] + [ctypes.c_float] * 6,
    "col2im_f32": [_F, _F, _F] + [_N] * 11,
    "im2col_f32": [_F, _F] + [_N] * 9,
}
_LIB: list = []  # [library or None] once tried


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)[:1] or ["cc"]


def _build(path: str) -> None:
    """Compile :data:`SOURCE` into ``path`` (a temporary file in its folder, then a rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(fd)
    try:
        subprocess.run([*_compiler(), *FLAGS, "-o", tmp, SOURCE, "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load(path: str):
    lib = ctypes.CDLL(path)
    for name, args in _SIGNATURES.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = None
    return lib


def library_path() -> str:
    """Where this source, compiler and flags are (or will be) built: one file per combination."""
    with open(SOURCE, "rb") as fh:
        tag = hashlib.sha256(fh.read() + " ".join(_compiler() + FLAGS).encode()
                             + sys.platform.encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), "native", f"native-{tag}.so")


def library():
    """The compiled loops (a :class:`ctypes.CDLL`), or None where they are off
    (``SPIKING_GAN_NATIVE=0``) or cannot be built (a warning says why, once per process). A
    cached library that does not load (damaged) is built again."""
    if _LIB:
        return _LIB[0]
    lib = None
    if os.environ.get(NATIVE_ENV, "1") != "0":
        path = library_path()
        try:
            if os.path.exists(path):
                try:
                    lib = _load(path)
                except OSError:
                    lib = None
            if lib is None:
                _build(path)
                lib = _load(path)
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", b"") or b""
            warnings.warn(f"spiking-gan: the compiled loops of models/native.c could not be built "
                          f"with {' '.join(_compiler())} ({err}{': ' if detail else ''}"
                          f"{detail.decode(errors='replace').strip()[:300]}); the NumPy code runs "
                          f"instead (the same results, slower)", RuntimeWarning, stacklevel=2)
            lib = None
    _LIB.append(lib)
    return lib


@contextlib.contextmanager
def disabled():
    """Context in which the NumPy code runs instead of the compiled loops (tests, benchmarks)."""
    old = list(_LIB)
    _LIB[:] = [None]
    try:
        yield
    finally:
        _LIB[:] = old


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_F)


def _ok(*arrays: np.ndarray) -> bool:
    return all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


def adam(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, b1, omb1, b2, omb2, step,
         eps_t) -> bool:
    """One Adam update of ``p`` in place (:meth:`training.exact.Adam.step`'s expressions; float32
    constants). False, with nothing changed, where the compiled loop does not apply."""
    lib = library()
    if lib is None or not _ok(p, g, m, v) or not (p.shape == g.shape == m.shape == v.shape) \
            or not p.flags.writeable:
        return False
    lib.adam_f32(_ptr(p), _ptr(g), _ptr(m), _ptr(v), p.size, b1, omb1, b2, omb2, step, eps_t)
    return True


def col2im(cols: np.ndarray, shape, k: int, s: int, p: int, padded) -> np.ndarray | None:
    """``(B, C, H, W)`` from a transposed convolution's product ``cols`` (B, h, w, C, k, k)
    (:meth:`models.ramp.ConvGeometry.up`), or None where the compiled loop does not apply."""
    lib = library()
    if lib is None or not _ok(cols):
        return None
    B, h, w, C = cols.shape[:4]
    H, W = shape
    out = np.empty((B, C, H, W), np.float32)
    plane = np.empty(padded[0] * padded[1], np.float32)
    lib.col2im_f32(_ptr(cols), _ptr(out), _ptr(plane), B, C, h, w, k, s, p, H, W, *padded)
    return out


def im2col(big: np.ndarray, small_hw, k: int, s: int, p: int) -> np.ndarray | None:
    """``(B h w, C k k)`` of big images (B, C, H, W) (:meth:`models.ramp.ConvGeometry._columns`),
    or None where the compiled loop does not apply."""
    lib = library()
    if lib is None or not _ok(big):
        return None
    B, C, H, W = big.shape
    h, w = small_hw
    cols = np.empty((B * h * w, C * k * k), np.float32)
    lib.im2col_f32(_ptr(big), _ptr(cols), B, C, H, W, h, w, k, s, p)
    return cols
