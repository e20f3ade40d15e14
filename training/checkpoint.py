"""Checkpoints: one ``.npz`` (weights + JSON metadata string), written atomically, no pickle."""
from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

from training.runinfo import atomic_write

FORMAT = "spiking-gan-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match the run."""


def save(path: str, networks: Dict[str, List[np.ndarray]], meta: Dict[str, Any]) -> None:
    """Write ``{name}_{k}`` weight arrays and a ``meta`` JSON string to ``path`` atomically."""
    arrays = {f"{name}_{k}": w for name, ws in networks.items() for k, w in enumerate(ws)}
    for key, w in arrays.items():
        if not np.all(np.isfinite(w)):
            raise CheckpointError(f"refusing to save non-finite weights {key} (NaN or inf)")
    meta = dict(meta, format=FORMAT, networks={n: len(ws) for n, ws in networks.items()})
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, buf.getvalue())


def load(path: str) -> Tuple[Dict[str, List[np.ndarray]], Dict[str, Any]]:
    """Read a checkpoint; raises :class:`CheckpointError` with the reason if it is unusable."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a spiking-gan checkpoint")
            nets = {n: [np.array(z[f"{n}_{k}"]) for k in range(L)] for n, L in meta["networks"].items()}
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc})")
    for n, ws in nets.items():
        for k, w in enumerate(ws):
            if not np.all(np.isfinite(w)):
                raise CheckpointError(f"checkpoint {path}: weights {n}_{k} contain NaN or inf")
    return nets, meta


def check_shapes(nets: Dict[str, List[np.ndarray]], expected: Dict[str, List[int]], path: str,
                 banks: int = 0) -> None:
    """Raise if the layer sizes in a checkpoint differ from the config's.

    ``banks > 0``: every layer must be a weight bank of that many matrices
    (``(banks, n_in, n_out)``, one network per class); 0: plain matrices.
    """
    for name, sizes in expected.items():
        ws = nets.get(name)
        got = None if not ws else [ws[0].shape[-2]] + [w.shape[-1] for w in ws]
        if got != list(sizes):
            raise CheckpointError(f"checkpoint {path} does not match the config: {name} has layers "
                                  f"{got}, the config says {list(sizes)}")
        want = (3, banks) if banks else (2, None)
        if any((w.ndim, w.shape[0] if w.ndim == 3 else None) != want for w in ws):
            asked = f"{banks} networks (one per class)" if banks else "one network"
            raise CheckpointError(f"checkpoint {path} does not match the config: {name} has weight shapes "
                                  f"{[w.shape for w in ws]}, the config asks for {asked}")
