"""Provenance of a run (config, seed, versions, git commit) and atomic file writes."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any, Dict

PACKAGES = ("numpy", "scipy", "brian2", "matplotlib", "mlxtend", "tqdm", "dask", "distributed",
            "torch", "torchvision")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a file atomically: a temporary file in the same folder, fsync, ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_json(path: str, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def git_commit() -> Dict[str, Any]:
    """The commit of this source tree and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": commit or "unknown", "dirty": dirty if commit else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_record(seed: int, extra: Dict[str, Any] | None = None) -> Dict[str, Any]:
    """Everything needed to reproduce a run, besides its config file."""
    rec = {"seed": seed, "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": platform.node(), "platform": platform.platform(), "versions": versions(),
           "git": git_commit()}
    rec.update(extra or {})
    return rec
