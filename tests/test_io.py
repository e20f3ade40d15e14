"""The one npz + JSON codec (models/files.py), atomic writes and file permissions."""
import json
import os
import stat

import numpy as np
import pytest

from models.errors import SpikingGanError
from models.files import FileFormatError, atomic_write, load_npz, numbered_arrays, numeric_array, output_group, save_npz
from training import checkpoint
from training.config import ConfigError
from training.trainer import RunError


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_roundtrip_without_pickle(tmp_path):
    path = str(tmp_path / "a.npz")
    arrays = {"w_0": np.arange(6, dtype=np.float32).reshape(2, 3), "t": np.array([1, 2], np.int32)}
    save_npz(path, arrays, {"epoch": 3, "nested": {"x": [1, 2]}})
    back, meta = load_npz(path)
    assert meta == {"epoch": 3, "nested": {"x": [1, 2]}}
    assert set(back) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
        assert back[k].dtype == arrays[k].dtype
    assert os.listdir(tmp_path) == ["a.npz"]  # no temporary file left
    with pytest.raises(ValueError, match="Python objects"):
        save_npz(path, {"o": np.array([{"a": 1}], dtype=object)})


@pytest.mark.parametrize("content,msg", [
    (b"", "corrupt or not an .npz"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "corrupt or not an .npz"),
    ("truncated", "corrupt or not an .npz"),
    ("pickled", "Python objects"),
    ("meta_list", "metadata is not a JSON object"),
    ("meta_text", "metadata is not a JSON object"),
    ("meta_number_array", "metadata is not a JSON object"),
])
def test_damaged_files_raise_one_error_naming_the_file(tmp_path, content, msg):
    path = tmp_path / "f.npz"
    if content == "truncated":
        save_npz(str(path), {"a": np.ones((50, 50))}, {"k": 1})
        path.write_bytes(path.read_bytes()[:-30])
    elif content == "pickled":
        np.savez(path, a=np.array([{"x": 1}], dtype=object))
    elif content == "meta_list":
        np.savez(path, meta=np.array(json.dumps([1, 2])))
    elif content == "meta_text":
        np.savez(path, meta=np.array("{not json"))
    elif content == "meta_number_array":
        np.savez(path, meta=np.arange(3))
    else:
        path.write_bytes(content)
    with pytest.raises(FileFormatError, match=msg) as exc:
        load_npz(str(path), "weights file")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert "allow_pickle" not in str(exc.value)  # no numpy advice to load it unsafely


def test_missing_folder_and_meta_required(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        load_npz(str(tmp_path / "none.npz"), "checkpoint")
    with pytest.raises(FileFormatError, match="is not a file"):
        load_npz(str(tmp_path), "checkpoint")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    assert load_npz(str(tmp_path / "plain.npz"))[1] is None
    with pytest.raises(FileFormatError, match="no metadata"):
        load_npz(str(tmp_path / "plain.npz"), meta_required=True)


def test_numeric_and_numbered_arrays():
    arrays = {"weights_0": np.ones((3, 2)), "weights_2": np.ones((2, 2)), "s": np.array(["a"]),
              "v": np.ones(3), "n": np.array([[np.nan]]), "b": np.array([[True]])}
    with pytest.raises(FileFormatError, match="weights_1 is missing"):
        numbered_arrays(arrays, "weights_", "w.npz")
    with pytest.raises(FileFormatError, match="holds no x_0"):
        numbered_arrays(arrays, "x_", "w.npz")
    assert numbered_arrays({"weights_1": 0, "weights_0": 0}, "weights_", "w") == ["weights_0", "weights_1"]
    with pytest.raises(FileFormatError, match="unexpected array weights_x"):
        numbered_arrays({"weights_x": 0}, "weights_", "w")
    assert numeric_array(arrays, "weights_0", "w").dtype == np.float32
    for key, msg in (("s", "expected numbers"), ("b", "expected numbers"), ("v", "expected 2-D"),
                     ("n", "NaN"), ("missing", "is missing")):
        with pytest.raises(FileFormatError, match=msg):
            numeric_array(arrays, key, "w")


def test_one_base_error_class():
    """Every user-facing error derives from SpikingGanError (what the CLI reports as one line)."""
    from experiments.sweep import SweepError
    from training.data import DataError
    from training.runinfo import OutputError
    for cls in (FileFormatError, checkpoint.CheckpointError, ConfigError, RunError, OutputError,
                SweepError, DataError):
        assert issubclass(cls, SpikingGanError), cls
    # the older bases stay, so that callers catching them still do
    assert issubclass(ConfigError, ValueError) and issubclass(checkpoint.CheckpointError, RuntimeError)


def test_atomic_write_gives_umask_permissions(tmp_path, umask):
    """The temporary file of an atomic write is 0600; the written file is 0666 & ~umask."""
    for mask in (0o022, 0o002, 0o077):
        umask(mask)
        path = tmp_path / f"f{mask}.txt"
        atomic_write(str(path), "x")
        assert _mode(path) == 0o666 & ~mask
        save_npz(str(tmp_path / f"a{mask}.npz"), {"a": np.ones(2)})
        assert _mode(tmp_path / f"a{mask}.npz") == 0o666 & ~mask


def test_output_group_all_or_nothing(tmp_path, umask):
    umask(0o022)
    a, b = tmp_path / "a.bin", tmp_path / "b.png"
    with pytest.raises(ZeroDivisionError):
        with output_group() as g:
            g.write(str(a), b"1")
            open(g.path(str(b)), "wb").write(b"2")
            raise ZeroDivisionError  # an error inside the group
    assert os.listdir(tmp_path) == []
    with output_group() as g:
        g.write(str(a), b"1")
        tmp = g.path(str(b))
        assert tmp.endswith(".png")  # writers that choose the format by the suffix
        open(tmp, "wb").write(b"2")
        assert g.commit() == [str(a), str(b)]
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.png"]
    assert _mode(a) == _mode(b) == 0o644
