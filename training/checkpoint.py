"""Checkpoints: one ``.npz`` (weights + JSON metadata), written atomically, no pickle.

Stored with the project's codec (:mod:`models.files`); every way a checkpoint can be damaged
is a :class:`CheckpointError` that names the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.files import FileFormatError, load_npz, numeric_array, save_npz

FORMAT = "spiking-gan-checkpoint-1"


class CheckpointError(FileFormatError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the run."""


def save(path: str, networks: dict[str, list[np.ndarray]], meta: dict[str, Any]) -> None:
    """Write ``{name}_{k}`` weight arrays and the ``meta`` JSON object to ``path`` atomically."""
    arrays = {f"{name}_{k}": w for name, ws in networks.items() for k, w in enumerate(ws)}
    for key, w in arrays.items():
        if not np.all(np.isfinite(w)):
            raise CheckpointError(f"refusing to save non-finite weights {key} (NaN or inf)")
    meta = dict(meta, format=FORMAT, networks={n: len(ws) for n, ws in networks.items()})
    save_npz(path, arrays, meta)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load(path: str, require: Sequence[str] = ()) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]]:
    """Read a checkpoint.

    Parameters
    ----------
    path : str
    require : metadata keys that must be present (e.g. ``rng_state`` to resume)

    Returns
    -------
    networks : dict name -> list of float weight arrays (2-D, or 3-D weight banks)
    meta : dict

    Raises
    ------
    CheckpointError
        Missing, corrupt, not a spiking-gan checkpoint, metadata that is not an object or
        lacks ``epoch``/``networks``/``require``, weights of the wrong type or rank, NaN/inf.
    """
    where = f"checkpoint {path}"
    try:
        arrays, meta = load_npz(path, "checkpoint", meta_required=True)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a spiking-gan checkpoint (format {meta.get('format')!r})")
        networks = meta.get("networks")
        if not isinstance(networks, dict) or not networks or not all(
                isinstance(n, str) and _count(L) and L > 0 for n, L in networks.items()):
            raise CheckpointError(f"{where}: metadata 'networks' is {networks!r}, expected "
                                  f"{{name: number of layers}}")
        for key in ("epoch", *require):
            if key not in meta:
                raise CheckpointError(f"{where}: metadata has no {key!r}")
        for key in ("epoch", "step"):
            if key in meta and not _count(meta[key]):
                raise CheckpointError(f"{where}: metadata {key!r} is {meta[key]!r}, expected a count >= 0")
        if "rng_state" in require and not isinstance(meta["rng_state"], dict):
            raise CheckpointError(f"{where}: metadata 'rng_state' is not a generator state")
        # weights are matrices (or banks of them, or the kernels of convolutional layers); the ramp
        # model also stores biases and Adam moments
        nets = {n: [numeric_array(arrays, f"{n}_{k}", where, ndim=(1, 2, 3, 4), dtype=None) for k in range(L)]
                for n, L in networks.items()}
    except CheckpointError:
        raise
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    return nets, meta


def check_shapes(nets: dict[str, list[np.ndarray]], expected: dict[str, list[int]], path: str,
                 banks: int = 0, shapes: dict[str, list[tuple[int, ...]]] | None = None) -> None:
    """Raise if the layer sizes in a checkpoint differ from the config's.

    ``banks > 0``: every layer must be a weight bank of that many matrices
    (``(banks, n_in, n_out)``, one network per class); 0: plain matrices. ``shapes``: the weight
    arrays' shapes the config gives (:func:`training.networks.weight_shapes`); where it has
    convolutional layers (4-D kernels) the weights are compared with it array by array.
    """
    if shapes is not None and any(len(s) == 4 for ss in shapes.values() for s in ss):
        for name, want in shapes.items():
            got = [tuple(w.shape) for w in nets.get(name, [])]
            if got != [tuple(s) for s in want]:
                raise CheckpointError(f"checkpoint {path} does not match the config: {name} has weight shapes "
                                      f"{got}, the config says {[tuple(s) for s in want]}")
        return
    for name, sizes in expected.items():
        ws = nets.get(name)
        if ws and any(w.ndim not in (2, 3) for w in ws):
            raise CheckpointError(f"checkpoint {path}: {name} weights have shapes {[w.shape for w in ws]}, "
                                  f"expected matrices")
        got = None if not ws else [ws[0].shape[-2]] + [w.shape[-1] for w in ws]
        if got != list(sizes):
            raise CheckpointError(f"checkpoint {path} does not match the config: {name} has layers "
                                  f"{got}, the config says {list(sizes)}")
        want = (3, banks) if banks else (2, None)
        if any((w.ndim, w.shape[0] if w.ndim == 3 else None) != want for w in ws):
            asked = f"{banks} networks (one per class)" if banks else "one network"
            raise CheckpointError(f"checkpoint {path} does not match the config: {name} has weight shapes "
                                  f"{[w.shape for w in ws]}, the config asks for {asked}")
