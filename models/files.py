"""Files: atomic writes with the user's permissions, and the one ``.npz`` + JSON codec.

Every file the project writes whole is written atomically, so a reader sees the old file or
the new one, never half of one: by :func:`atomic_write` (a temporary file in the same folder,
``fsync``, then ``os.replace``; :func:`atomic_json`, :func:`save_npz` and the figure writer
``analysis.plots.save_figure`` use it), or, for outputs that must appear together, by an
:class:`OutputGroup` (:func:`temp_path` + :func:`publish`). The exceptions: ``metrics.jsonl``,
which training appends to line by line (training/trainer.py, training/classifier.py), and the
digit cache, which training/data.py writes by its own temporary file and rename. The temporary
files of this module are created with mode 0600; each gets the permissions a plain
``open(path, "w")`` would give (``0o666 & ~umask``) before it replaces the target.

Arrays with metadata are stored by :func:`save_npz` / :func:`load_npz`: an ``.npz`` of
numeric arrays plus a ``meta`` entry holding one JSON object as a string. Nothing is
pickled, and every way a file can be damaged (missing, not an npz, truncated, object
arrays, a ``meta`` that is not a JSON object) is a :class:`FileFormatError` naming the file.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from models.errors import SpikingGanError

META = "meta"


class FileFormatError(SpikingGanError, ValueError):
    """A file is missing, damaged or not of the kind expected."""


#: Environment variable that overrides the cache folder (tests point it into a temporary folder).
CACHE_ENV = "SPIKING_GAN_CACHE"


def cache_dir() -> str:
    """Folder of the user's spiking-gan cache (not created here): the digit cache
    (training/data.py) and the compiled loops (models/native.py).

    ``$SPIKING_GAN_CACHE`` if set, else ``$XDG_CACHE_HOME/spiking-gan``, else
    ``~/.cache/spiking-gan``.
    """
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "spiking-gan")


def _umask() -> int:
    """The process's umask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file: ``0o666 & ~umask`` (what ``open(path, "w")`` gives)."""
    return 0o666 & ~_umask()


def temp_path(path: str) -> str:
    """A new, empty temporary file next to ``path`` with the same suffix (for writers that
    want a file name, e.g. matplotlib, whose format follows the suffix)."""
    folder = os.path.dirname(os.path.abspath(path))
    name, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp" + ext)
    os.close(fd)
    return tmp


def publish(tmp: str, path: str) -> None:
    """Give ``tmp`` the user's file permissions and move it onto ``path`` atomically."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a file atomically: a temporary file in the same folder, fsync, ``os.replace``.

    Parameters
    ----------
    path : str
        Target file; its folder must exist.
    data : bytes or str (written as UTF-8)
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class OutputGroup:
    """Outputs of one command that appear together or not at all.

    ``group.path(final)`` hands out a temporary file next to ``final`` for any writer;
    :meth:`commit` moves every one onto its final name (with the user's permissions);
    leaving the ``with`` block through an exception removes them all.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []

    def path(self, final: str) -> str:
        tmp = temp_path(final)
        self._pending.append((tmp, final))
        return tmp

    def write(self, final: str, data: bytes | str) -> None:
        with open(self.path(final), "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)

    def commit(self) -> list[str]:
        done = []
        for tmp, final in self._pending:
            publish(tmp, final)
            done.append(final)
        self._pending = []
        return done

    def discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._pending = []


@contextlib.contextmanager
def output_group() -> Iterator[OutputGroup]:
    """``with output_group() as g: ... g.commit()``; on an exception nothing is left."""
    group = OutputGroup()
    try:
        yield group
    finally:
        group.discard()


# ------------------------------------------------------------------------------ the codec
def npz_bytes(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None,
              compress: bool = False) -> bytes:
    """The ``.npz`` file content of ``arrays`` (+ ``meta`` as a JSON string), no pickle."""
    if META in arrays:
        raise ValueError(f"the array name {META!r} is reserved for the metadata")
    for key, a in arrays.items():
        if np.asarray(a).dtype.hasobject:
            raise ValueError(f"array {key} holds Python objects; only numeric arrays are stored")
    extra = {} if meta is None else {META: np.array(json.dumps(meta, sort_keys=True))}
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **extra, **arrays)
    return buf.getvalue()


def write_npz_stream(path: str, specs: dict[str, tuple[tuple[int, ...], Any]],
                     chunks: Iterable[Sequence[np.ndarray]], constants: dict[str, np.ndarray] | None = None,
                     compress: bool = True) -> None:
    """Write an ``.npz`` whose arrays arrive together, chunk by chunk, in one pass.

    Memory holds one chunk, whatever the arrays' size: the first array streams into the file,
    the others are spooled to temporary files beside ``path`` and appended at the end (disk:
    up to twice their size until the file is complete). The file is what :func:`npz_bytes`
    writes for the whole arrays; it is written at ``path`` directly, so give a temporary path
    (:meth:`OutputGroup.path`) and publish it when complete.

    Parameters
    ----------
    path : str
    specs : name -> (shape, dtype) of each chunked array, in the order of a chunk's parts
    chunks : iterable of sequences, one part per array of ``specs``; the parts of all chunks
        together, along the first axis and in C order, make the arrays
    constants : small arrays written whole
    compress : deflate the entries (as ``np.savez_compressed``)

    Raises
    ------
    ValueError
        The chunks do not add up to the shapes, or hold another dtype.
    """
    names = list(specs)
    dtypes = [np.dtype(specs[k][1]) for k in names]
    for k, dt in zip(names, dtypes):
        if dt.hasobject:
            raise ValueError(f"array {k} holds Python objects; only numeric arrays are stored")

    def header(k, dt):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dt),
                                                   "fortran_order": False,
                                                   "shape": tuple(int(d) for d in specs[k][0])})
        return buf.getvalue()

    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    folder = os.path.dirname(os.path.abspath(path))
    written = [0] * len(names)
    with zipfile.ZipFile(path, "w", compression=mode, allowZip64=True) as zf, \
            contextlib.ExitStack() as stack:
        spools = [stack.enter_context(tempfile.TemporaryFile(dir=folder)) for _ in names[1:]]
        first = stack.enter_context(zf.open(names[0] + ".npy", "w", force_zip64=True))
        for fh, k, dt in zip([first, *spools], names, dtypes):
            fh.write(header(k, dt))
        for parts in chunks:
            for j, (fh, part, dt) in enumerate(zip([first, *spools], parts, dtypes)):
                part = np.ascontiguousarray(part)
                if part.dtype != dt:
                    raise ValueError(f"array {names[j]}: a chunk of dtype {part.dtype}, expected {dt}")
                fh.write(part.tobytes())
                written[j] += part.size
        first.close()
        for j, k in enumerate(names):
            expected = int(np.prod(specs[k][0], dtype=np.int64))
            if written[j] != expected:
                raise ValueError(f"array {k}: the chunks hold {written[j]} values, its shape "
                                 f"{specs[k][0]} {expected}")
        for spool, k in zip(spools, names[1:]):
            spool.seek(0)
            with zf.open(k + ".npy", "w", force_zip64=True) as fh:
                while block := spool.read(2**24):
                    fh.write(block)
        for k, a in (constants or {}).items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(a), allow_pickle=False)
            zf.writestr(k + ".npy", buf.getvalue())


def save_npz(path: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None,
             compress: bool = False) -> None:
    """Write arrays and a JSON-object ``meta`` to ``path`` atomically (no pickle).

    Parameters
    ----------
    path : str
        Target file (written exactly there: no ``.npz`` is appended).
    arrays : dict name -> numeric array
    meta : dict, optional
        JSON-serialisable metadata, stored as the string array ``meta``.
    compress : bool
        zip-deflate the arrays (``np.savez_compressed``).
    """
    atomic_write(path, npz_bytes(arrays, meta, compress))


def load_npz(path: str, what: str = "file", meta_required: bool = False
             ) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """Read an ``.npz`` written by :func:`save_npz` (or ``np.savez``) without pickle.

    Parameters
    ----------
    path : str
    what : str
        What the file is, for the messages ("checkpoint", "weights file", ...).
    meta_required : bool
        The file must hold a ``meta`` JSON object.

    Returns
    -------
    arrays : dict name -> array (``meta`` excluded)
    meta : dict or None (no ``meta`` entry)

    Raises
    ------
    FileFormatError
        Missing, not an ``.npz``, damaged, holding pickled objects, or a ``meta`` that is
        not a JSON object.
    """
    if not os.path.exists(path):
        raise FileFormatError(f"{what} {path} does not exist")
    if not os.path.isfile(path):
        raise FileFormatError(f"{what} {path} is not a file")
    if not zipfile.is_zipfile(path):
        raise FileFormatError(f"{what} {path} is corrupt or not an .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise FileFormatError(f"{what} {path} holds Python objects (pickled arrays), "
                                  f"which are not read") from None
        raise FileFormatError(f"{what} {path} is corrupt ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise FileFormatError(f"{what} {path} is corrupt ({type(exc).__name__}: {exc})") from None
    meta = None
    if META in arrays:
        raw = arrays.pop(META)
        try:
            meta = json.loads(str(raw[()])) if raw.shape == () and raw.dtype.kind == "U" else None
        except json.JSONDecodeError:
            meta = None
        if not isinstance(meta, dict):
            raise FileFormatError(f"{what} {path}: its metadata is not a JSON object")
    elif meta_required:
        raise FileFormatError(f"{what} {path} holds no metadata (not written by spiking-gan)")
    return arrays, meta


def numeric_array(arrays: dict[str, np.ndarray], key: str, where: str, ndim: Sequence[int] = (2,),
                  dtype=np.float32) -> np.ndarray:
    """``arrays[key]`` as a finite ``dtype`` array of one of the ranks ``ndim``
    (``dtype=None``: float arrays keep their type, integer arrays become float32).

    Raises
    ------
    FileFormatError
        Missing, not a real-number array (strings, booleans, complex, objects), of another
        rank, or with NaN/inf; the message names ``where`` and ``key``.
    """
    if key not in arrays:
        raise FileFormatError(f"{where}: array {key} is missing")
    a = arrays[key]
    if a.dtype.kind not in "iuf":
        raise FileFormatError(f"{where}: array {key} holds {a.dtype} values, expected numbers")
    if a.ndim not in ndim:
        raise FileFormatError(f"{where}: array {key} has shape {a.shape}, expected "
                              f"{' or '.join(f'{n}-D' for n in ndim)}")
    a = a.astype(dtype if dtype is not None else (a.dtype if a.dtype.kind == "f" else np.float32))
    if not np.all(np.isfinite(a)):
        raise FileFormatError(f"{where}: array {key} contains NaN or inf")
    return a


def numbered_arrays(arrays: dict[str, np.ndarray], prefix: str, where: str, start: int = 0) -> list[str]:
    """The keys ``{prefix}{start}``, ``{prefix}{start+1}``, ... in order; a gap is an error.

    Raises
    ------
    FileFormatError
        No such key, or a number missing in the sequence (``weights_0`` and ``weights_2``
        without ``weights_1``), or a key with a non-integer suffix.
    """
    found = {}
    for k in arrays:
        if k.startswith(prefix):
            suffix = k[len(prefix):]
            if not suffix.isdigit():
                raise FileFormatError(f"{where}: unexpected array {k} (expected {prefix}{start}, "
                                      f"{prefix}{start + 1}, ...)")
            found[int(suffix)] = k
    if not found:
        raise FileFormatError(f"{where} holds no {prefix}{start}, {prefix}{start + 1}, ... arrays")
    want = list(range(start, start + len(found)))
    if sorted(found) != want:
        missing = sorted(set(range(start, max(found) + 1)) - set(found))
        raise FileFormatError(f"{where}: {prefix}{missing[0] if missing else start} is missing "
                              f"(found {', '.join(found[n] for n in sorted(found))})")
    return [found[n] for n in want]
