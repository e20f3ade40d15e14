"""Sample quality without internet: a local classifier and distances on its features.

Published GAN metrics (FID, KID, inception score) use an Inception network trained on
ImageNet, which needs downloaded weights. Here a small NumPy MLP trained on the training
images of the run's own data set (``training/data.py``: the embedded digits, MNIST or
Fashion-MNIST; one cached classifier per data set, ``analysis.evaluate.classifier_for``)
stands in for it:

* :func:`train_classifier` -- MLP 784 -> 256 (ReLU) -> 10 (softmax), Adam, minibatches,
  deterministic given a seed; 95 % test accuracy in about a second on 2 cores.
* :func:`frechet_distance` -- classifier-FID on the 256 penultimate (ReLU) features.
* :func:`kernel_distance` -- KID: unbiased MMD^2 with the cubic polynomial kernel,
  better behaved than FID for a few hundred samples (unbiased, no covariance estimate).
* :func:`class_coverage`, :func:`mean_confidence`, :func:`inception_score` -- on the
  classifier's class probabilities.
* :func:`readable_share` -- the share of samples the classifier reads with confidence >= 0.9.
* :func:`nearest_real_ratio` -- the mean pixel distance of each sample to its nearest
  training image, relative to the same for real test images (real digits = 1).
* :func:`evaluate_samples` -- all of the above (and :mod:`analysis.speckle`'s speckle and
  isolated pixels) as one JSON-serialisable dict, with the real test images' own values of
  the measures that have one (``readable_real``, ``isolated_real``, ``speckle_real``).

The numbers are only comparable between runs that use the same classifier (same data, seed
and settings; :func:`get_classifier` caches it) and the same reference images; they are NOT
comparable with published Inception-based FIDs. The non-spiking GAN of ``analysis/ann_gan.py``
is the fair reference point.

All functions are pure (no global state); arrays are NumPy, no pickle anywhere.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, special

from analysis.diversity import within_class_diversity
from analysis.speckle import isolated, speckle
from models.files import FileFormatError, load_npz, numeric_array, save_npz
from training.exact import Adam

#: Format tag stored in classifier files.
CLASSIFIER_FORMAT = "spiking-gan-quality-classifier-1"
#: Pixels of an image and number of digit classes.
N_PIXELS = 784
N_CLASSES = 10
#: A sample is "readable" when the classifier's largest class probability reaches this.
READABLE_CONFIDENCE = 0.9
#: Real test images the nearest-real distance of real digits is averaged over (the first ones).
NEAREST_REAL_MAX = 1000


# ----------------------------------------------------------------------------------------------
# helpers


def limit_blas_threads(n: int | None):
    """Context manager limiting the BLAS threads (via ``threadpoolctl``) to ``n``; None = as is.

    The matrices here are small (batches of 64 x 784 x 256): one BLAS thread is as fast as
    two on an idle 2-core machine and 5-8x faster when another process keeps the cores
    busy (measured: classifier 1 s vs 9 s, ANN GAN 0.25 vs 1.8 s per epoch). A no-op if
    ``threadpoolctl`` (a dependency of scikit-learn, pulled in by mlxtend) is missing.
    Training is bit-for-bit reproducible for a fixed thread count and BLAS build; OpenBLAS
    rounds differently with 1 and 2 threads, so the default of 1 also makes runs
    reproducible across machines' core counts.
    """
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with mlxtend's scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n), user_api="blas")


# ----------------------------------------------------------------------------------------------
# images


def as_unit_images(images: np.ndarray) -> np.ndarray:
    """Flatten images to float32 ``(n, 784)`` in [0, 1].

    Parameters
    ----------
    images : array (n, 28, 28) or (n, 784)
        uint8 (0..255, divided by 255) or float already in [0, 1].

    Returns
    -------
    x : float32 array (n, 784)

    Raises
    ------
    ValueError
        Wrong shape, non-finite values or floats outside [0, 1].
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[1] != N_PIXELS:
        raise ValueError(f"images must have shape (n, 28, 28) or (n, 784), got {np.shape(images)}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32, copy=False)
    if x.size:
        if not np.all(np.isfinite(x)):
            raise ValueError("images contain NaN or inf")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
                             "(pass uint8 images or divide by 255)")
    return x


# ----------------------------------------------------------------------------------------------
# classifier


@dataclass
class Classifier:
    """A two-layer MLP digit classifier: 784 -> hidden (ReLU) -> 10 (softmax).

    Attributes
    ----------
    W1 : float32 (784, hidden)
    b1 : float32 (hidden,)
    W2 : float32 (hidden, 10)
    b2 : float32 (10,)
    """

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray

    @property
    def n_hidden(self) -> int:
        return int(self.W1.shape[1])

    def features(self, x01: np.ndarray, batch: int = 4096) -> np.ndarray:
        """Penultimate features: the ReLU hidden layer.

        Parameters
        ----------
        x01 : float array (n, 28, 28) or (n, 784) in [0, 1] (uint8 is divided by 255)

        Returns
        -------
        h : float32 array (n, hidden), hidden = 256 by default
        """
        x = as_unit_images(x01)
        out = np.empty((x.shape[0], self.n_hidden), dtype=np.float32)
        for s in range(0, x.shape[0], batch):
            out[s:s + batch] = np.maximum(x[s:s + batch] @ self.W1 + self.b1, 0.0)
        return out

    def logits(self, x01: np.ndarray) -> np.ndarray:
        """Class logits, float32 ``(n, 10)``."""
        return self.features(x01) @ self.W2 + self.b2

    def predict_proba(self, x01: np.ndarray) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        x01 : float array (n, 28, 28) or (n, 784) in [0, 1]

        Returns
        -------
        p : float32 array (n, 10), rows sum to 1
        """
        return _softmax(self.logits(x01))

    def predict(self, x01: np.ndarray) -> np.ndarray:
        """Most probable class, int64 ``(n,)``."""
        return np.argmax(self.logits(x01), axis=1).astype(np.int64)

    def accuracy(self, x01: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of images whose most probable class is the label."""
        return float(np.mean(self.predict(x01) == np.asarray(labels)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_classifier(images: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 20,
                     hidden: int = 256, batch_size: int = 64, lr: float = 1e-3,
                     weight_decay: float = 1e-4, blas_threads: int | None = 1) -> Classifier:
    """Train the MLP digit classifier with Adam on shuffled minibatches.

    Deterministic given ``seed`` and ``blas_threads`` (initialisation and shuffling use
    ``np.random.default_rng(seed)``; float32 arithmetic).

    Parameters
    ----------
    images : (n, 28, 28) or (n, 784), uint8 or float in [0, 1]
    labels : int array (n,), values 0..9
    seed : int
    epochs : int
        Passes over the data (default 20: 95.0 % on the embedded test split, ~1 s).
    hidden : int
        Width of the ReLU layer (the feature dimension of FID/KID; 256 by default).
    batch_size : int
    lr : float
        Adam learning rate.
    weight_decay : float
        L2 penalty on the weight matrices (added to the gradient).
    blas_threads : int or None
        BLAS threads while training (see :func:`limit_blas_threads`; None = leave as is).

    Returns
    -------
    Classifier
    """
    with limit_blas_threads(blas_threads):
        return _train_classifier(as_unit_images(images), labels, seed, epochs, hidden, batch_size,
                                 lr, weight_decay)


def _train_classifier(x, labels, seed, epochs, hidden, batch_size, lr, weight_decay) -> Classifier:
    y = np.asarray(labels).astype(np.int64).ravel()
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
    if y.size == 0 or y.min() < 0 or y.max() >= N_CLASSES:
        raise ValueError(f"labels must be in 0..{N_CLASSES - 1}")
    if epochs < 0 or batch_size < 1 or hidden < 1:
        raise ValueError("epochs must be >= 0, batch_size and hidden >= 1")
    rng = np.random.default_rng(seed)
    # He-uniform for the ReLU layer, Glorot-uniform for the softmax layer.
    lim1 = np.sqrt(6.0 / N_PIXELS)
    lim2 = np.sqrt(6.0 / (hidden + N_CLASSES))
    W1 = rng.uniform(-lim1, lim1, (N_PIXELS, hidden)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    W2 = rng.uniform(-lim2, lim2, (hidden, N_CLASSES)).astype(np.float32)
    b2 = np.zeros(N_CLASSES, np.float32)
    params = [W1, b1, W2, b2]
    opt = Adam.like(params)
    wd = np.float32(weight_decay)
    onehot = np.eye(N_CLASSES, dtype=np.float32)[y]
    n = x.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            xb, tb = x[idx], onehot[idx]
            h = np.maximum(xb @ W1 + b1, 0.0)
            p = _softmax(h @ W2 + b2)
            d2 = (p - tb) / np.float32(len(idx))        # d(mean cross-entropy)/d(logits)
            gW2 = h.T @ d2 + wd * W2
            gb2 = d2.sum(axis=0)
            d1 = (d2 @ W2.T) * (h > 0)
            gW1 = xb.T @ d1 + wd * W1
            gb1 = d1.sum(axis=0)
            opt.step(params, [gW1, gb1, gW2, gb2], lr, beta1=0.9, beta2=0.999)
    return Classifier(W1, b1, W2, b2)


def _check_classifier(clf: Classifier, where: str) -> None:
    arrays = {"W1": clf.W1, "b1": clf.b1, "W2": clf.W2, "b2": clf.b2}
    h = np.shape(clf.W1)[1] if np.ndim(clf.W1) == 2 else -1
    expected = {"W1": (N_PIXELS, h), "b1": (h,), "W2": (h, N_CLASSES), "b2": (N_CLASSES,)}
    for k, a in arrays.items():
        if h < 1 or np.shape(a) != expected[k]:
            raise FileFormatError(f"{where}: classifier array {k} has shape {np.shape(a)}, expected "
                                  f"{expected[k]} (784 -> hidden -> 10)")
        if not np.all(np.isfinite(a)):
            raise FileFormatError(f"{where}: classifier array {k} contains NaN or inf")


def save_classifier(clf: Classifier, path: str, meta: dict[str, Any] | None = None) -> None:
    """Write the classifier to an ``.npz`` atomically (temp file + ``os.replace``), no pickle.

    Parameters
    ----------
    clf : Classifier
    path : str
    meta : dict, optional
        JSON-serialisable extra information (stored as a JSON string).
    """
    _check_classifier(clf, "save_classifier")
    meta = dict(meta or {}, format=CLASSIFIER_FORMAT)
    save_npz(path, {k: np.asarray(getattr(clf, k), np.float32) for k in ("W1", "b1", "W2", "b2")}, meta)


def _read_classifier(path: str) -> tuple[Classifier, dict[str, Any]]:
    stored, meta = load_npz(path, "classifier file", meta_required=True)
    if meta.get("format") != CLASSIFIER_FORMAT:
        raise FileFormatError(f"{path} is not a quality-classifier file (format {meta.get('format')!r})")
    clf = Classifier(*(numeric_array(stored, k, f"classifier file {path}", ndim=(1, 2))
                       for k in ("W1", "b1", "W2", "b2")))
    _check_classifier(clf, f"classifier file {path}")
    return clf, meta


def load_classifier(path: str) -> Classifier:
    """Read a classifier written by :func:`save_classifier` (``allow_pickle=False``).

    Raises
    ------
    ValueError
        The file is missing, corrupt, not a classifier file, or its arrays have the wrong
        shapes or contain NaN/inf.
    """
    return _read_classifier(path)[0]


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the training images and labels (decides whether a cached classifier fits)."""
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(images), np.ascontiguousarray(np.asarray(labels, np.int64))):
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def get_classifier(cache_path: str | None, data, seed: int = 0, **train_kwargs) -> Classifier:
    """The quality classifier: loaded from ``cache_path`` if valid, else trained and cached.

    A cached file is used only if it loads cleanly and was trained on the same
    ``data.train_images`` / ``data.train_labels`` with the same seed and settings (a
    fingerprint is stored in the file); otherwise the classifier is retrained on them and
    the cache is rewritten (a corrupt cache gives a warning, not an error).

    Parameters
    ----------
    cache_path : str or None
        ``.npz`` file (its folder is created); None = no caching.
    data : training.data.Dataset (anything with ``train_images`` and ``train_labels``)
    seed : int
    **train_kwargs : passed to :func:`train_classifier` (epochs, hidden, ...)

    Returns
    -------
    Classifier
    """
    bound = inspect.signature(train_classifier).bind(None, None, seed=seed, **train_kwargs)
    bound.apply_defaults()                        # so that epochs=20 and the default agree
    settings = {k: v for k, v in bound.arguments.items()
                if k not in ("images", "labels", "blas_threads")}
    key = {"data": data_fingerprint(data.train_images, data.train_labels),
           "settings": json.dumps(settings, sort_keys=True)}
    if cache_path and os.path.exists(cache_path):
        try:
            clf, meta = _read_classifier(cache_path)
            if meta.get("key") == key:
                return clf
        except ValueError as exc:
            warnings.warn(f"ignoring the cached classifier: {exc}; retraining", RuntimeWarning, stacklevel=2)
    clf = train_classifier(data.train_images, data.train_labels, seed=seed, **train_kwargs)
    if cache_path:
        folder = os.path.dirname(os.path.abspath(cache_path))
        os.makedirs(folder, exist_ok=True)
        meta = {"key": key, "dataset": getattr(data, "name", "")}
        if hasattr(data, "test_images") and hasattr(data, "test_labels"):
            meta["test_accuracy"] = clf.accuracy(data.test_images, data.test_labels)
        save_classifier(clf, cache_path, meta)
    return clf


# ----------------------------------------------------------------------------------------------
# distances between feature sets


def _features_pair(feat_a: np.ndarray, feat_b: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (n, d) arrays with the same d, got {a.shape} and {b.shape}")
    if a.shape[0] < min_n or b.shape[0] < min_n:
        raise ValueError(f"need at least {min_n} samples in each set, got {a.shape[0]} and {b.shape[0]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("features contain NaN or inf")
    return a, b


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (classifier-FID).

    ``||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr(sqrtm(S_a S_b))``, with sample
    covariances (``ddof=1``) in float64 and :func:`scipy.linalg.sqrtm`. Tiny imaginary
    parts of the matrix square root (numerical noise) are dropped; if the product is so
    singular that sqrtm fails, ``eps`` is added to both diagonals (as pytorch-fid does).
    Tiny negative results from round-off are clipped to 0.

    Parameters
    ----------
    feat_a : array (n_a, d)
    feat_b : array (n_b, d)
        n >= 2 each; with n < d the covariances are singular and the distance is biased
        (upwards) -- prefer :func:`kernel_distance` for a few hundred samples.

    Returns
    -------
    float (>= 0; the same units as squared features)
    """
    a, b = _features_pair(feat_a, feat_b, 2)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))
    s_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # Dead ReLU units make the covariances singular; sqrtm then warns although its
        # result stays accurate (checked against an eigendecomposition to ~1e-8 relative).
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(s_a.shape[0]) * eps
            covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.imag(covmean)))) if covmean.size else 0.0
        scale = max(1.0, float(np.max(np.abs(np.real(covmean)))))
        if imag > 1e-3 * scale:
            warnings.warn(f"frechet_distance: sqrtm has a large imaginary part ({imag:.3g}); "
                          "the covariances are probably near-singular (too few samples?)",
                          RuntimeWarning, stacklevel=2)
        covmean = np.real(covmean)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_distance(feat_a: np.ndarray, feat_b: np.ndarray, n_subsets: int = 50,
                    subset_size: int = 500, seed: int = 0, return_std: bool = False):
    """Kernel distance (KID): unbiased MMD^2 with the cubic polynomial kernel.

    ``k(x, y) = (x . y / d + 1)^3`` (Binkowski et al. 2018). For each of ``n_subsets``
    subsets, ``m = min(subset_size, n_a, n_b)`` rows are drawn without replacement from
    each set and the unbiased estimate

        sum_{i != j} k(a_i, a_j) / (m (m-1)) + sum_{i != j} k(b_i, b_j) / (m (m-1))
        - 2 sum_{i, j} k(a_i, b_j) / m^2

    is computed; the result is the mean over subsets. Unbiased: about 0 (it can be slightly
    negative) for two samples of one distribution, whatever the sample size.

    Parameters
    ----------
    feat_a : array (n_a, d)
    feat_b : array (n_b, d)
        n >= 2 each.
    n_subsets : int
    subset_size : int
    seed : int
        Seed of the subset draws (deterministic).
    return_std : bool
        Also return the standard deviation over subsets.

    Returns
    -------
    float, or (mean, std) if ``return_std``
    """
    a, b = _features_pair(feat_a, feat_b, 2)
    if n_subsets < 1 or subset_size < 2:
        raise ValueError("n_subsets must be >= 1 and subset_size >= 2")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    vals = np.empty(n_subsets)
    for s in range(n_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        vals[s] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                   + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2.0 * kxy.mean())
    mean = float(vals.mean())
    return (mean, float(vals.std())) if return_std else mean


# ----------------------------------------------------------------------------------------------
# scores on class probabilities


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"probs must be an (n, classes) array with n >= 1, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0:
        raise ValueError("probs must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of probs must sum to 1")
    return p


def class_coverage(probs: np.ndarray, min_share: float = 0.02) -> float:
    """Fraction of the classes that the samples cover.

    A class counts as covered when it is the most probable class (argmax) of at least
    one sample AND of at least ``min_share`` of all samples. The default, 2 %, is a fifth
    of the uniform share (1/10): a generator that draws a digit now and then by accident
    does not cover it, while a balanced one covers all ten with a wide margin even for a
    few hundred samples (a class of 10 % share falls below 2 % in a sample of 500 with
    negligible probability). ``min_share=0`` counts every class that appears at all.

    Parameters
    ----------
    probs : array (n, classes), rows sum to 1
    min_share : float in [0, 1]

    Returns
    -------
    float in [1/classes, 1]: covered classes / classes (e.g. 0.1 = mode collapse onto one digit)
    """
    p = _check_probs(probs)
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be in [0, 1], got {min_share}")
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    covered = (counts > 0) & (counts >= min_share * p.shape[0])
    return float(covered.sum() / p.shape[1])


def mean_confidence(probs: np.ndarray) -> float:
    """Mean over samples of the largest class probability (1 = every sample is a clear digit).

    Parameters
    ----------
    probs : array (n, classes)

    Returns
    -------
    float in [1/classes, 1]
    """
    return float(_check_probs(probs).max(axis=1).mean())


def inception_score(probs: np.ndarray) -> float:
    """Inception-style score ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean of ``p(y|x)``.

    1 when every sample gets the same class distribution (e.g. one digit only);
    the number of classes (10) when every sample is one class with certainty and the
    classes are equally frequent. ``0 log 0 = 0``.

    Parameters
    ----------
    probs : array (n, classes)

    Returns
    -------
    float in [1, classes]
    """
    p = _check_probs(probs)
    py = p.mean(axis=0, keepdims=True)
    kl = special.rel_entr(p, py).sum(axis=1)
    return float(np.exp(kl.mean()))


def readable_share(probs: np.ndarray, threshold: float = READABLE_CONFIDENCE) -> float:
    """Share of the samples whose largest class probability is at least ``threshold``.

    What a person would call "reads at a glance": the classifier is sure which digit it is.

    Parameters
    ----------
    probs : array (n, classes), rows sum to 1
    threshold : float in [0, 1] (default :data:`READABLE_CONFIDENCE`, 0.9)

    Returns
    -------
    float in [0, 1]; real test digits about 0.9 with the default classifier
    """
    p = _check_probs(probs)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return float((p.max(axis=1) >= threshold).mean())


def nearest_distances(x01: np.ndarray, bank01: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Euclidean pixel distance of each image to its nearest image of ``bank01``.

    Parameters
    ----------
    x01 : float array (n, 28, 28) or (n, 784) in [0, 1] (uint8 is divided by 255)
    bank01 : the same (m >= 1 images), e.g. the training images
    batch : rows of ``x01`` per distance block (memory: ``batch * m`` floats)

    Returns
    -------
    float64 array (n,), >= 0 (0 for an image that is in the bank)
    """
    x = as_unit_images(x01)
    bank = as_unit_images(bank01)
    if bank.shape[0] < 1:
        raise ValueError("the bank of images is empty")
    bank_sq = np.einsum("ij,ij->i", bank, bank)
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        d2 = np.einsum("ij,ij->i", xb, xb)[:, None] + bank_sq[None, :] - 2.0 * (xb @ bank.T)
        out[s:s + batch] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def nearest_real_ratio(x01: np.ndarray, train01: np.ndarray, real01: np.ndarray,
                       max_real: int = NEAREST_REAL_MAX) -> float:
    """Mean distance of each sample to its nearest training image, relative to real digits.

    ``mean_i min_j ||x_i - t_j|| / mean_k min_j ||r_k - t_j||`` over the samples ``x``, the
    training images ``t`` and the first ``max_real`` real held-out images ``r`` (Euclidean, on
    intensities in [0, 1]). Real digits = 1; above 1 the samples lie farther from every
    training digit than a new real digit does (blobs, broken strokes, noise), below 1 they lie
    closer (a G that copies its training digits reaches 0). Caveat: the Euclidean distance
    rewards averages, so blurred strokes lie *closer* than sharp ones (test digits smeared by a
    3 x 3 box filter: 0.90), and a sample set is read with :func:`readable_share` and the
    speckle measures beside it.

    Parameters
    ----------
    x01 : samples (n, 28, 28) or (n, 784) in [0, 1]
    train01 : the training images
    real01 : real held-out images (not in ``train01``), e.g. the test images
    max_real : use at most this many of ``real01``

    Returns
    -------
    float >= 0
    """
    base = nearest_distances(np.asarray(real01)[:max_real], train01).mean()
    if base <= 0:
        raise ValueError("the real images are all in the training images: no scale to compare with")
    return float(nearest_distances(x01, train01).mean() / base)


# ----------------------------------------------------------------------------------------------
# all together


def evaluate_samples(images01: np.ndarray, clf: Classifier, reference_images01: np.ndarray,
                     kid_subsets: int = 50, kid_subset_size: int = 500, min_share: float = 0.02,
                     seed: int = 0, blas_threads: int | None = 1,
                     train_images01: np.ndarray | None = None) -> dict[str, Any]:
    """All sample-quality measures of generated images against real reference images.

    Parameters
    ----------
    images01 : float array (n, 28, 28) or (n, 784) in [0, 1]
        Generated samples (n >= 2; a few hundred or more for a meaningful FID).
    clf : Classifier
    reference_images01 : float array (m, 28, 28) or (m, 784) in [0, 1]
        Real held-out images, e.g. ``data.test_images / 255``.
    kid_subsets, kid_subset_size, seed : see :func:`kernel_distance`
    min_share : see :func:`class_coverage`
    blas_threads : int or None, see :func:`limit_blas_threads`
    train_images01 : float array (k, 28, 28) or (k, 784) in [0, 1], optional
        The training images, for ``nearest_real`` (left out without them).

    Returns
    -------
    dict (JSON-serialisable) with
        ``classifier_fid`` (float, lower is better), ``kid`` (float, lower is better),
        ``class_coverage`` (float in [0.1, 1]), ``mean_confidence`` (float),
        ``inception_score`` (float in [1, 10]), ``n_samples`` (int),
        ``within_class_diversity`` (float, real digits about 1; :mod:`analysis.diversity`),
        ``speckle`` (float, lit pixels that stand alone; real digits about 0.002; :mod:`analysis.speckle`),
        ``isolated`` (float, lit pixels without a lit neighbour; real digits about 0.0001),
        ``readable`` (float, :func:`readable_share`), ``readable_real``, ``speckle_real`` and
        ``isolated_real`` (the same three of the real reference images), and with
        ``train_images01`` ``nearest_real`` (:func:`nearest_real_ratio`; real digits = 1).
    """
    with limit_blas_threads(blas_threads):
        out = _evaluate(as_unit_images(images01), clf, as_unit_images(reference_images01),
                        kid_subsets, kid_subset_size, min_share, seed)
        if train_images01 is not None:
            out["nearest_real"] = nearest_real_ratio(images01, train_images01, reference_images01)
        return out


def _evaluate(x, clf, ref, kid_subsets, kid_subset_size, min_share, seed) -> dict[str, Any]:
    feat = clf.features(x)
    feat_ref = clf.features(ref)
    probs = _softmax(feat @ clf.W2 + clf.b2)
    probs_ref = _softmax(feat_ref @ clf.W2 + clf.b2)
    div = within_class_diversity(x, probs.argmax(axis=1), ref, probs_ref.argmax(axis=1), seed=seed)
    return {
        "within_class_diversity": div["within_class_diversity"],
        "classifier_fid": frechet_distance(feat, feat_ref),
        "kid": kernel_distance(feat, feat_ref, n_subsets=kid_subsets, subset_size=kid_subset_size,
                               seed=seed),
        "class_coverage": class_coverage(probs, min_share=min_share),
        "mean_confidence": mean_confidence(probs),
        "inception_score": inception_score(probs),
        "n_samples": int(x.shape[0]),
        "speckle": speckle(x),
        "speckle_real": speckle(ref),
        "isolated": isolated(x),
        "isolated_real": isolated(ref),
        "readable": readable_share(probs),
        "readable_real": readable_share(probs_ref),
    }
