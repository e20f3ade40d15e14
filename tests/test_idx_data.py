"""MNIST / Fashion-MNIST from IDX files (training.data.load_idx): no torchvision, checked, one-line errors.

The tests write small IDX files of their own; only the last test reads the Debian package
``dataset-fashion-mnist`` (skipped where it is not installed).
"""
import dataclasses
import gzip
import hashlib
import os

import numpy as np
import pytest
from helpers import ROOT

from analysis import evaluate
from spiking_gan.cli import main
from training import config as cm
from training import data as data_mod
from training.config import DataConfig, GanConfig
from training.data import IDX_FILES, DataError, load_dataset, load_idx, parse_idx

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file of ``arr`` written byte by byte (the format's spec, not the parser under test)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write_set(folder, n_train=12, n_test=5, gz=(), seed=0):
    """Four IDX files in ``folder`` (``gz``: the file names to gzip); returns the arrays written."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for (split, kind), name in IDX_FILES.items():
        n = n_train if split == "train" else n_test
        arr = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if kind == "images"
               else rng.integers(0, 10, n, dtype=np.uint8))
        raw = idx_bytes(arr)
        path = os.path.join(folder, name + (".gz" if name in gz else ""))
        with open(path, "wb") as fh:
            fh.write(gzip.compress(raw) if name in gz else raw)
        arrays[split, kind] = arr
    return arrays


def assert_same(d, arrays):
    np.testing.assert_array_equal(d.train_images, arrays["train", "images"])
    np.testing.assert_array_equal(d.train_labels, arrays["train", "labels"])
    np.testing.assert_array_equal(d.test_images, arrays["test", "images"])
    np.testing.assert_array_equal(d.test_labels, arrays["test", "labels"])
    assert d.train_images.dtype == np.uint8 and d.train_labels.dtype == np.int64
    assert d.train_images.flags.writeable


# ------------------------------------------------------------------------------------ parser
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (3, 28, 28)), (np.int8, (7,)), (">i2", (2, 3)),
                                         (">i4", (4, 1, 2)), (">f4", (5,)), (">f8", (2, 2))])
def test_parse_idx_reads_every_type_in_native_order(dtype, shape):
    rng = np.random.default_rng(1)
    want = (rng.normal(size=shape) * 100).astype(dtype)
    got = parse_idx(idx_bytes(want))
    assert got.shape == shape and got.dtype.isnative
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("buf,msg", [
    (b"", "not an IDX file"),
    (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file"),    # magic's zero bytes
    (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file"),    # unknown type code
    (b"\x00\x00\x08\x00", "not an IDX file"),                                       # no dimensions
    (b"\x00\x00\x08\x03" + (3).to_bytes(4, "big"), "truncated: 8 bytes, less than its 16-byte header"),
    (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"ab", "announces 3 values .*truncated"),
    (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abcd", "announces 3 values .*damaged"),
])
def test_parse_idx_rejects_damaged_bytes(buf, msg):
    with pytest.raises(DataError, match=msg):
        parse_idx(buf, "f")


# ------------------------------------------------------------------------------------ loader
def test_load_idx_reads_gzipped_and_plain_files_in_a_folder(tmp_path):
    arrays = write_set(tmp_path, gz=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    d = load_idx("fashion-mnist", str(tmp_path))
    assert d.name == "fashion-mnist"
    assert_same(d, arrays)


def test_load_idx_reads_torchvisions_layout_and_prefers_the_gz(tmp_path):
    """``DIR/MNIST/raw/`` (torchvision's root), where both the .gz and the gunzipped file lie."""
    raw = tmp_path / "MNIST" / "raw"
    arrays = write_set(raw, gz=tuple(IDX_FILES.values()))
    for name in IDX_FILES.values():                     # a gunzipped copy of other content beside it
        (raw / name).write_bytes(b"not read")
    assert_same(load_idx("mnist", str(tmp_path)), arrays)
    with pytest.raises(DataError, match="FashionMNIST/raw"):  # the other data set's folder is not read
        load_idx("fashion-mnist", str(tmp_path))


def test_empty_data_dir_means_the_data_sets_default_folder(tmp_path, monkeypatch):
    arrays = write_set(tmp_path / "fm")
    spec = data_mod.IDX_SETS["fashion-mnist"]
    assert spec.default_dir == FASHION_DIR
    monkeypatch.setitem(data_mod.IDX_SETS, "fashion-mnist", dataclasses.replace(spec, default_dir=str(tmp_path / "fm")))
    assert_same(load_idx("fashion-mnist", ""), arrays)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert data_mod.data_home() == str(tmp_path / "share" / "spiking-gan")


def test_a_missing_file_is_one_line_saying_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as fm:
        load_idx("fashion-mnist", str(tmp_path))
    msg = str(fm.value)
    assert "\n" not in msg and "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    write_set(tmp_path)
    os.unlink(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError) as mn:
        load_idx("mnist", str(tmp_path))
    msg = str(mn.value)
    assert "\n" not in msg and msg.startswith("MNIST: t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte) not found")
    assert all(f"{name}.gz" in msg for name in IDX_FILES.values()) and "data.data_dir" in msg
    assert os.path.join(data_mod.data_home(), "mnist") in msg


@pytest.mark.parametrize("damage,msg", [
    ("truncated_gz", "cannot be read"),
    ("not_gz", "cannot be read"),
    ("truncated", "truncated"),
    ("labels_as_images", "not MNIST-style images"),
    ("wrong_size", "not MNIST-style images"),
    ("label_10", "labels up to 10"),
    ("count", "12 train images but 11 labels"),
])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, damage, msg):
    write_set(tmp_path, gz=("train-images-idx3-ubyte",))
    img, lab = tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte"
    named = img
    if damage == "truncated_gz":
        img.write_bytes(img.read_bytes()[:-100])
    elif damage == "not_gz":
        img.write_bytes(idx_bytes(np.zeros((12, 28, 28), np.uint8)))
    elif damage == "truncated":
        img.write_bytes(gzip.compress(gzip.decompress(img.read_bytes())[:-1]))
    elif damage == "labels_as_images":
        img.write_bytes(gzip.compress(lab.read_bytes()))
    elif damage == "wrong_size":
        img.write_bytes(gzip.compress(idx_bytes(np.zeros((12, 32, 32), np.uint8))))
    elif damage == "label_10":
        lab.write_bytes(idx_bytes(np.full(12, 10, np.uint8)))
        named = lab
    elif damage == "count":
        lab.write_bytes(idx_bytes(np.zeros(11, np.uint8)))
        named = tmp_path
    with pytest.raises(DataError, match=msg) as err:
        load_idx("fashion-mnist", str(tmp_path))
    assert "\n" not in str(err.value) and str(named) in str(err.value)
    assert "dataset-fashion-mnist" in str(err.value)


def test_full_size_files_must_have_the_official_content(tmp_path, monkeypatch):
    """A file with the official count (10,000 test images) is checked against the official MD5."""
    arrays = write_set(tmp_path, n_test=10_000)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is damaged or not the official MNIST file: "
                                        "the MD5 of its content is [0-9a-f]{32}, the official file's "
                                        "2646ac647ad5339dbf082846283269ea"):
        load_idx("mnist", str(tmp_path))
    # the same files, had they the official content: read (the MD5 is of the content, gzip or not)
    md5 = {name: hashlib.md5((tmp_path / name).read_bytes()).hexdigest() for name in IDX_FILES.values()}
    spec = data_mod.IDX_SETS["mnist"]
    monkeypatch.setitem(data_mod.IDX_SETS, "mnist", dataclasses.replace(spec, md5=md5))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress((tmp_path / "t10k-images-idx3-ubyte")
                                                                      .read_bytes()))
    os.unlink(tmp_path / "t10k-images-idx3-ubyte")
    assert_same(load_idx("mnist", str(tmp_path)), arrays)
    labels = (tmp_path / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels[:-1] + bytes([(labels[-1] + 1) % 10]))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is damaged"):  # one label changed
        load_idx("mnist", str(tmp_path))


def test_the_checksums_are_the_official_ones():
    """Each data set lists the MD5 of each of its four files, and no two are the same."""
    for spec in data_mod.IDX_SETS.values():
        assert set(spec.md5) == set(IDX_FILES.values())
    digests = [d for spec in data_mod.IDX_SETS.values() for d in spec.md5.values()]
    assert len(set(digests)) == 8 and all(len(d) == 32 and int(d, 16) >= 0 for d in digests)


def test_load_dataset_subsets_an_idx_set(tmp_path):
    arrays = write_set(tmp_path, n_train=40)
    d = load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path), classes=[3, 4], max_train=5))
    keep = np.isin(arrays["train", "labels"], [3, 4])
    np.testing.assert_array_equal(d.train_images, arrays["train", "images"][keep][:5])
    np.testing.assert_array_equal(d.test_labels, arrays["test", "labels"])  # the test split stays whole


# ------------------------------------------------------------------------ the shipped recipes
@pytest.mark.parametrize("name,dataset", [("fashion_single.toml", "fashion-mnist"), ("mnist_single.toml", "mnist")])
def test_full_data_recipes_are_the_dense_pair_on_another_data_set(name, dataset):
    cfg = cm.load(os.path.join(ROOT, "configs", name), GanConfig)
    assert (cfg.data.dataset, cfg.data.data_dir, cfg.data.max_train) == (dataset, "", 0)
    diff = cm.config_diff(cm.to_dict(cfg), cm.to_dict(cm.override(GanConfig(), cm.DENSE_RECIPE)))
    assert diff == ["data.dataset", "train.epochs"], diff


def test_train_without_the_files_fails_in_one_line(tmp_path, capsys):
    """`spiking-gan train --config configs/fashion_single.toml` without the package: one line, no run folder."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    assert main(["train", "--config", os.path.join(ROOT, "configs", "fashion_single.toml"),
                 "--data-dir", str(empty), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz" in err and str(empty) in err
    assert "apt-get install dataset-fashion-mnist" in err
    assert not out.exists()


def test_each_data_set_has_its_own_classifier_file(tmp_path):
    """The quality classifier is trained on the run's data set and cached under its name."""
    assert evaluate.classifier_file("digits") == "quality_classifier.npz"
    write_set(tmp_path / "fm", n_train=64, n_test=16)
    fm = load_idx("fashion-mnist", str(tmp_path / "fm"))
    cache = tmp_path / "cache"
    clf = evaluate.classifier_for(fm, str(cache))
    assert (cache / "quality_classifier_fashion-mnist.npz").exists()
    assert not (cache / "quality_classifier.npz").exists()
    again = evaluate.classifier_for(fm, str(cache))                   # read back, not retrained
    np.testing.assert_array_equal(again.W1, clf.W1)
    meta = np.load(cache / "quality_classifier_fashion-mnist.npz", allow_pickle=False)["meta"]
    assert '"dataset": "fashion-mnist"' in str(meta)


# --------------------------------------------------------------- the real files, where installed
@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason="apt-get install dataset-fashion-mnist")
def test_the_debian_fashion_mnist_package():
    """The package's four files: the official content (MD5), 6,000 / 1,000 images per class."""
    d = load_idx("fashion-mnist")
    assert d.train_images.shape == (60_000, 28, 28) and d.test_images.shape == (10_000, 28, 28)
    np.testing.assert_array_equal(np.bincount(d.train_labels), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(d.test_labels), np.full(10, 1000))
    np.testing.assert_array_equal(d.train_labels[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    assert 0 < d.train_images.mean() < 255
