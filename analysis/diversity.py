"""Within-class diversity of generated digits, relative to real digits of the same class.

A GAN can cover all ten classes and still collapse inside each one (every 1 the same
1). The measure: assign every image a class (the quality classifier's prediction, for
generated and real images alike), blur it lightly (a Gaussian of ``sigma`` pixels) so
that pixel speckle does not count as variety, and take the mean pairwise Euclidean
distance between images of one class. The score of a class is that distance for the
generated images divided by the same for real held-out images of the class; the overall
score is the mean over classes, weighted by the generated images' class counts. Real
digits against real digits score about 1; one template per class scores near 0, plus
whatever blurred speckle remains.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

#: Blur of the images before the distances, in pixels.
BLUR_SIGMA = 1.0
#: A class enters the score only with at least this many generated (and real) images.
MIN_PER_CLASS = 5
#: At most this many images of a class are compared (pairs grow as n^2).
MAX_PER_CLASS = 300


def blurred(images01: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Gaussian low-pass of images (n, 28, 28) or (n, 784) in [0, 1]; returns (n, 784) float32."""
    x = np.asarray(images01, np.float32).reshape(-1, 28, 28)
    return gaussian_filter(x, (0, sigma, sigma), mode="constant").reshape(len(x), -1)


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs ``i < j`` of the rows of ``x`` (n >= 2)."""
    x = np.asarray(x, np.float64)
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    iu = np.triu_indices(len(x), k=1)
    return float(np.sqrt(d2[iu]).mean())


def within_class_diversity(images01: np.ndarray, classes: np.ndarray, reference01: np.ndarray,
                           reference_classes: np.ndarray, sigma: float = BLUR_SIGMA,
                           seed: int = 0) -> dict[str, object]:
    """Within-class diversity of ``images01`` relative to ``reference01`` (see module docstring).

    Parameters
    ----------
    images01 : float array (n, 28, 28) or (n, 784) in [0, 1], generated images
    classes : int array (n,), their classes (e.g. the quality classifier's predictions)
    reference01, reference_classes : the same for real held-out images
    sigma : blur in pixels
    seed : chooses the images compared when a class has more than ``MAX_PER_CLASS``

    Returns
    -------
    dict with ``within_class_diversity`` (float, nan if no class qualifies) and
    ``diversity_per_class`` (list of 10 floats, nan where a class has too few images)
    """
    rng = np.random.default_rng(seed)
    x, r = blurred(images01, sigma), blurred(reference01, sigma)
    classes, reference_classes = np.asarray(classes), np.asarray(reference_classes)
    per_class, weights = [], []
    for c in range(10):
        gi, ri = np.flatnonzero(classes == c), np.flatnonzero(reference_classes == c)
        if min(len(gi), len(ri)) < MIN_PER_CLASS:
            per_class.append(float("nan"))
            continue
        gi = rng.permutation(gi)[:MAX_PER_CLASS]
        ri = rng.permutation(ri)[:MAX_PER_CLASS]
        ref = mean_pairwise_distance(r[ri])
        per_class.append(mean_pairwise_distance(x[gi]) / ref if ref > 0 else float("nan"))
        weights.append(len(gi))
    ok = np.isfinite(per_class)
    score = (float(np.average(np.asarray(per_class)[ok], weights=weights)) if ok.any()
             else float("nan"))
    return {"within_class_diversity": score, "diversity_per_class": per_class}


def diversity_score(images01: np.ndarray, clf, reference01: np.ndarray,
                    seed: int = 0, sigma: float | None = None) -> dict[str, object]:
    """:func:`within_class_diversity` with the classes given by a quality classifier ``clf``."""
    return within_class_diversity(images01, clf.predict(images01), reference01, clf.predict(reference01),
                                  BLUR_SIGMA if sigma is None else sigma, seed)
