"""Within-class diversity (analysis/diversity.py): real digits ~1, templates ~0, speckle does not count."""
import numpy as np
import pytest

from analysis import diversity


def test_pairwise_distance_by_hand():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert diversity.mean_pairwise_distance(x) == pytest.approx((5 + 4 + 3) / 3)


def test_real_digits_score_about_one_and_templates_near_zero(digits, clf):
    ref = digits.test_images / 255.0
    real = diversity.diversity_score(digits.train_images[:1000] / 255.0, clf, ref)
    assert 0.9 < real["within_class_diversity"] < 1.1
    labels = clf.predict(ref)
    templates = np.stack([ref[labels == c][0] for c in range(10)])
    one_each = templates[np.arange(1000) % 10]
    assert diversity.diversity_score(one_each, clf, ref)["within_class_diversity"] < 1e-3
    # the template with 5 % of its pixels flipped: speckle, not variety -> far below real digits
    rng = np.random.default_rng(0)
    speckled = one_each.reshape(1000, -1).copy()
    flip = rng.random(speckled.shape) < 0.05
    speckled[flip] = 1.0 - speckled[flip]
    score = diversity.diversity_score(speckled, clf, ref)
    assert score["within_class_diversity"] < 0.5
    assert len(score["diversity_per_class"]) == 10


def test_classes_with_too_few_images_are_left_out():
    rng = np.random.default_rng(1)
    x = rng.random((12, 784))
    out = diversity.within_class_diversity(x, np.r_[np.zeros(10, int), [1, 1]], x, np.r_[np.zeros(10, int), [1, 1]])
    assert out["within_class_diversity"] == pytest.approx(1.0)
    assert np.isnan(out["diversity_per_class"][1]) and np.isnan(out["diversity_per_class"][5])
