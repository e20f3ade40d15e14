"""What a size given by a user costs, checked before any work starts.

Every size a command takes (``--n``, ``--batch``, ``--sample``, layer sizes, a batch size in a
config) goes through :func:`check_memory` or :func:`check_disk` with an estimate of what it
needs, so that an absurd size ends in one line that names the option and the limit, not in a
traceback after minutes of work or a half-written output.

The estimates are upper bounds of the arrays the command holds at once (bytes); the limits are
what the machine has when the command starts: ``MemAvailable`` of ``/proc/meminfo`` (the
physical memory where that is not available) and the free space of the output's file system.
"""
from __future__ import annotations

import os
import shutil

from models.errors import SpikingGanError

#: Share of the available memory a command may plan to use (the rest is the interpreter,
#: the libraries and what the estimate leaves out).
MEMORY_SHARE = 0.8


class SizeError(SpikingGanError, ValueError):
    """A size given by the user costs more memory or disk than there is, or exceeds what exists."""


def format_bytes(n: float) -> str:
    """``n`` bytes for people: ``1.5 GiB``, ``300 MiB``, ``12 KiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def available_memory() -> int:
    """Bytes of memory a new allocation can get now (``MemAvailable``; else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2**63


def free_disk(path: str) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    return shutil.disk_usage(p).free


def synapse_count(sizes) -> int:
    """Synapses of a dense layered network with layer sizes ``sizes``: ``sum n_k n_(k+1)``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def check_memory(nbytes: float, option: str, what: str) -> None:
    """Refuse ``option`` when ``what`` needs more than :data:`MEMORY_SHARE` of the available memory.

    Parameters
    ----------
    nbytes : estimated peak memory, bytes
    option : the option that set the size, as the user wrote it (``--n 100000000``)
    what : what the memory is for (``"the samples"``)

    Raises
    ------
    SizeError
    """
    limit = MEMORY_SHARE * available_memory()
    if nbytes > limit:
        raise SizeError(f"{option}: {what} would need about {format_bytes(nbytes)} of memory, and this "
                        f"machine has {format_bytes(limit / MEMORY_SHARE)} available; give a smaller value")


def check_disk(nbytes: float, path: str, option: str, what: str) -> None:
    """Refuse ``option`` when writing ``what`` (at most ``nbytes``) to ``path`` would fill its disk.

    Raises
    ------
    SizeError
    """
    free = free_disk(path)
    if nbytes > free:
        raise SizeError(f"{option}: {what} would take up to {format_bytes(nbytes)} on disk, and "
                        f"{os.path.dirname(os.path.abspath(path))} has {format_bytes(free)} free; "
                        f"give a smaller value or another folder")


def check_count(value: int, limit: int, option: str, what: str) -> None:
    """Refuse ``option value`` above ``limit`` (what exists: ``what`` names it).

    Raises
    ------
    SizeError
    """
    if value > limit:
        raise SizeError(f"{option} {value}: {what}; give {limit} or less")


def training_bytes(networks: list[list[int]], batch: int, banks: int = 1) -> int:
    """Upper bound of the memory of training ``networks`` (their layer sizes) on ``batch``
    samples at a time (bytes), for the check before a run starts.

    Each weight is counted 6 times in float64 (weights, gradient, Adam's two moments, a weight
    average, a copy), times ``banks`` (per-class networks); each neuron 16 times per sample
    (spike times, potentials, errors and the R1 penalty's second pass).
    """
    synapses = sum(synapse_count(sizes) for sizes in networks)
    neurons = sum(sum(sizes) for sizes in networks)
    return 8 * (6 * banks * synapses + 16 * batch * neurons)
