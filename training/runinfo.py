"""Provenance of a run (config, seed, versions, git commit) and the rule for output folders.

The rule, for every command that writes a folder (:func:`check_out_dir`, then
:func:`make_out_dir`):

- a folder that does not exist is created, with its parents, once every input is checked;
- an existing, non-empty folder is refused unless it holds the output of the same command and
  that command may continue it (``train --resume``; ``compare-losses``, ``figures``, ``sweep``,
  ``evaluate`` and ``inspect`` reuse or redraw their own folders), or ``--force`` is given,
  which says what it replaces;
- no command writes into the folder of another command: ``run.json`` records which command
  made a folder (``command``; runs made before it was recorded are recognised by their files);
- a folder belongs to one process at a time: :func:`folder_lock` takes an exclusive lock
  (``flock`` on :data:`LOCK_FILE` in the folder) before the folder is checked, and holds it
  until the command ends. The operating system releases it when the process dies, ``kill -9``
  included, so a killed run can be resumed at once; a second process is refused with one line
  naming the folder and the process that holds it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from models.errors import SpikingGanError
from models.files import atomic_json, atomic_write  # noqa: F401  (re-exported: used across the project)

PACKAGES = ("numpy", "scipy", "brian2", "matplotlib", "mlxtend", "tqdm", "dask", "distributed",
            "torch", "torchvision")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: The committed outputs of the study: rewriting them (as ``make figures`` does step after step)
#: does not change what the code computes, so it does not make a run "dirty".
OUTPUTS_DIR = "figures"


def _changed(*pathspec: str) -> bool:
    out = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", *pathspec],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip() != ""


def tracked_files(path: str) -> list[str]:
    """Files under ``path`` that git tracks in the repository holding it ([] outside one)."""
    if not os.path.isdir(path):
        return []
    try:
        out = subprocess.run(["git", "-C", path, "ls-files", "."], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def git_commit() -> dict[str, Any]:
    """The commit of this source tree: ``dirty`` when code, configs or docs have uncommitted
    changes, ``outputs_changed`` when only committed figures (:data:`OUTPUTS_DIR`) do."""
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if not commit:
            return {"commit": "unknown", "dirty": None}
        return {"commit": commit, "dirty": _changed(".", f":(exclude){OUTPUTS_DIR}"),
                "outputs_changed": _changed(OUTPUTS_DIR)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_record(seed: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run, besides its config file."""
    rec = {"seed": seed, "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": platform.node(), "platform": platform.platform(), "versions": versions(),
           "git": git_commit()}
    rec.update(extra or {})
    return rec


# ------------------------------------------------------------------------ output folders
RUN_FILE = "run.json"
#: ``run.json`` ``kind`` of runs written before ``command`` was recorded.
LEGACY_KINDS = {"gan": "train", "classifier": "classify"}
#: Files by which folders written before ``run.json`` recorded the command are recognised.
LEGACY_FILES = {"train": ("config.toml", "checkpoint.npz"), "sweep": ("sweep.json",),
                "compare-losses": ("loss_comparison.md", "loss_comparison.csv", "runs"),
                "figures": ("loss_comparison.md", "ann"),
                "evaluate": ("metrics.json",), "inspect": ("raster.png", "membrane.png")}


#: Files a sweep writes into a point's folder before the point's run starts there: a folder
#: that holds only these counts as a new folder for ``train``.
PREPARED_FILES = ("point.json",)
#: The lock file of a folder in use (:func:`folder_lock`): it holds the owner's pid, command
#: and start time, and is removed when the owner ends (a killed owner leaves it, unlocked).
LOCK_FILE = ".spiking-gan.lock"


class OutputError(SpikingGanError, RuntimeError):
    """An output folder or file cannot be used as asked."""


def folder_command(path: str) -> str | None:
    """The command that made the folder ``path``: ``run.json``'s ``command`` (older runs: their
    ``kind``), else ``"unknown"`` for a damaged ``run.json``, else None (no record)."""
    rec_path = os.path.join(path, RUN_FILE)
    if not os.path.isfile(rec_path):
        return None
    try:
        with open(rec_path) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return "unknown"
    if not isinstance(rec, dict):
        return "unknown"
    return rec.get("command") or LEGACY_KINDS.get(rec.get("kind"), "unknown")


def _looks_like(path: str, command: str) -> bool:
    """A folder without ``run.json`` made by ``command`` before the command was recorded."""
    return any(os.path.exists(os.path.join(path, f)) for f in LEGACY_FILES.get(command, ()))


def check_out_dir(path: str, command: str, reuse: bool = False, force: bool = False,
                  option: str = "--out", hint: str = "") -> str:
    """Check that ``command`` may write the folder ``path``; creates nothing.

    Parameters
    ----------
    path : the output folder
    command : the command that writes it (``train``, ``classify``, ``compare-losses``, ...)
    reuse : the command continues or redraws a folder it made earlier
    force : replace a folder of the same command (``--force``)
    option : the option that named the folder (for the messages)
    hint : appended to the message that refuses a folder of the same command

    Returns
    -------
    "new" (missing or empty), "reuse" or "replace"

    Raises
    ------
    OutputError
        ``path`` is a file, cannot be created, holds something else, the output of another
        command, or (without ``reuse``/``force``) the output of this command.
    """
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputError(f"{option} {path} is a file, not a folder")
    if not os.path.isdir(path):
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise OutputError(f"{option} {path}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {path}: cannot create it, {parent} is not writable")
        return "new"
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path} is not writable")
    if not set(os.listdir(path)) - set(PREPARED_FILES) - {LOCK_FILE}:
        return "new"
    made_by = folder_command(path)
    if made_by is None and _looks_like(path, command):
        made_by = command
    if made_by is None:
        raise OutputError(f"{option} {path} is not empty and holds no spiking-gan {command} output; "
                          f"choose a new or an empty folder")
    if made_by != command:
        raise OutputError(f"{option} {path} holds the output of `spiking-gan {made_by}`; "
                          f"{command} does not write into it, choose another folder")
    if reuse:
        return "reuse"
    if force:
        return "replace"
    raise OutputError(f"{option} {path} already holds a run (of spiking-gan {command})"
                      + (f"; {hint}" if hint else "; choose another folder, or --force to replace it"))


def make_out_dir(path: str, command: str, action: str, record: dict[str, Any] | None = None,
                 quiet: bool = False, refresh: bool = False) -> None:
    """Create (or empty, for ``action == "replace"``) the output folder ``path`` checked by
    :func:`check_out_dir`, and record ``command`` in its ``run.json``.

    Parameters
    ----------
    path : the output folder
    command : the command writing it
    action : what :func:`check_out_dir` returned
    record : the ``run.json`` content (default :func:`run_record` without a seed); a reused
        folder keeps its ``run.json`` if it has one
    quiet : do not say what ``--force`` replaces (it is said on stderr otherwise)
    refresh : a reused folder's ``run.json`` is replaced by ``record`` (for outputs that are
        rewritten by every invocation, such as a loss comparison's tables)
    """
    if action == "replace":
        entries = sorted(set(os.listdir(path)) - {LOCK_FILE})
        if not quiet:
            shown = ", ".join(entries[:8]) + (f", ... ({len(entries)} entries)" if len(entries) > 8 else "")
            print(f"--force: replacing the {command} run in {path} ({shown})", file=sys.stderr, flush=True)
        for name in entries:
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    os.makedirs(path, exist_ok=True)
    rec_path = os.path.join(path, RUN_FILE)
    if action == "reuse" and os.path.exists(rec_path) and not refresh:
        return
    atomic_json(rec_path, dict(record or run_record(None), command=command))


# ------------------------------------------------------------------------ folder locks
class FolderBusy(OutputError):
    """The folder is in use by another process (:func:`folder_lock`)."""


#: Folders this process holds: real path -> (pid, depth). The pid guards against a forked
#: child, which inherits this table but not the right to the lock.
_HELD: dict[str, tuple[int, int]] = {}


def _holder(lock_path: str) -> str:
    """Who holds a lock, as its file says (it may not have written it yet)."""
    try:
        with open(lock_path) as fh:
            rec = json.load(fh)
        return (f"`spiking-gan {rec['command']}` (process {rec['pid']} on {rec['host']}, "
                f"since {rec['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _make_dirs(path: str, option: str) -> list[str]:
    """Create ``path`` and its missing parents; returns the folders this call created."""
    missing, p = [], os.path.abspath(path)
    while not os.path.isdir(p):
        if os.path.lexists(p):
            raise OutputError(f"{option} {path}: {p} is a file, not a folder")
        missing.append(p)
        p = os.path.dirname(p)
    created = []
    for d in reversed(missing):
        try:
            os.mkdir(d)
            created.append(d)
        except FileExistsError:  # made by a process that started at the same moment
            pass
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot create {d} ({exc.strerror})") from None
    return created


@contextlib.contextmanager
def folder_lock(path: str, command: str, option: str = "--out") -> Iterator[None]:
    """Hold the output folder ``path`` for ``command`` while the block runs.

    The folder (and its missing parents) is created if it does not exist, then locked with an
    exclusive, non-blocking ``flock`` on ``path/LOCK_FILE``: creation and locking come before
    any check of the folder's content, so two processes started at the same moment cannot both
    pass the checks. Folders this call created are removed again if the block leaves them empty
    (a check failed), so a refused command leaves nothing behind. Re-entrant within a process.

    Raises
    ------
    FolderBusy
        Another process holds the folder; the message names it.
    OutputError
        The folder cannot be created or locked.
    """
    real = os.path.realpath(path)
    pid = os.getpid()
    held = _HELD.get(real)
    if held is not None and held[0] == pid:
        _HELD[real] = (pid, held[1] + 1)
        try:
            yield
        finally:
            _HELD[real] = (pid, _HELD[real][1] - 1)
        return
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputError(f"{option} {path} is a file, not a folder")
    created = _make_dirs(path, option)
    lock_path = os.path.join(path, LOCK_FILE)
    fd = None
    try:
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(f"{option} {path} is in use by {_holder(lock_path)}; wait for it to "
                                 f"end, or choose another folder") from None
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise OutputError(f"{option} {path}: this file system cannot lock files "
                                      f"({exc.strerror}); choose a folder on a local disk") from None
                raise OutputError(f"{option} {path}: cannot lock {lock_path} ({exc.strerror})") from None
            try:  # the owner before us may have removed the file between our open and our lock
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            fd = None
        rec = {"pid": pid, "command": command, "host": platform.node(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(rec).encode())
        _HELD[real] = (pid, 1)
        try:
            yield
        finally:
            del _HELD[real]
            with contextlib.suppress(OSError):
                os.unlink(lock_path)  # while still locked: a waiting process re-opens it
    finally:
        if fd is not None:
            os.close(fd)
        for d in reversed(created):  # a refused command leaves no folder behind
            with contextlib.suppress(OSError):
                os.rmdir(d)


def holds_folder(command: str | None = None, arg: str = "out_dir", option: str = "--out"):
    """Decorator: the function runs under :func:`folder_lock` of its argument ``arg``, for
    ``command`` (default: the function's own ``command`` argument)."""
    def decorate(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            with folder_lock(bound.arguments[arg], command or bound.arguments["command"], option):
                return func(*args, **kwargs)
        return wrapper
    return decorate
