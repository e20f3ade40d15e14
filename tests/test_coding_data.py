import numpy as np
import pytest

from models.coding import decode_times, encode_images, encode_values, sample_noise_times
from training.data import load_digits


def test_encode_images_s4nn_formula():
    img = np.array([[0, 255, 128, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(encode_images(img, 256), [[256, 0, 127, 254]])
    assert encode_images(img, 256).dtype == np.int32


def test_encode_rejects_bad_pixels():
    with pytest.raises(ValueError, match="0, 255"):
        encode_images(np.array([[300.0]]), 256)
    with pytest.raises(ValueError):
        encode_images(np.array([[np.nan]]), 256)


def test_decode_inverts_encode_values():
    z = np.array([[0.0, 1.0, 0.5, 0.25]])
    t = encode_values(z, 256)
    np.testing.assert_array_equal(t, [[256, 0, 128, 192]])
    np.testing.assert_allclose(decode_times(t, 256), z)
    assert decode_times(np.array([256]), 256)[0] == 0.0  # no spike -> black


def test_noise_times_range():
    t = sample_noise_times(np.random.default_rng(0), 50, 100, 64)
    assert t.shape == (50, 100) and t.min() >= 0 and t.max() <= 64


def test_embedded_digits_split():
    d = load_digits()
    assert d.train_images.shape == (4000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (1000, 28, 28)
    np.testing.assert_array_equal(np.bincount(d.test_labels), np.full(10, 100))
    # shuffled (the source is sorted by label) and fixed
    assert len(set(d.train_labels[:20])) > 3
    d2 = load_digits()
    np.testing.assert_array_equal(d.train_labels, d2.train_labels)
    # no image in both halves
    train = {x.tobytes() for x in d.train_images}
    assert sum(x.tobytes() in train for x in d.test_images) <= 5  # MNIST has a few duplicates
