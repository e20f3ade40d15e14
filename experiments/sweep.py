"""Parameter sweeps of the Spiking-GAN on Dask.

A sweep is a grid (or a random sample) of dotted-key overrides of one GAN config; each point
is a full training run (:func:`training.trainer.train_gan`) followed by
:func:`analysis.evaluate.evaluate_run`. Points run as Dask tasks: on a
``distributed.LocalCluster`` of this machine by default, or on any running ``distributed``
scheduler (``dask scheduler`` + ``dask worker``, dask-jobqueue's ``SLURMCluster``, ...).

Sweep file (TOML), validated completely before anything runs
------------------------------------------------------------
``base``            GAN config every point starts from (path relative to the sweep file)
``mode``            ``"grid"`` (default) or ``"random"``
``samples``         random mode: number of points drawn
``seed``            random mode: seed of the draws (default 0)
``retries``         extra attempts of a failing point (default 1)
``n_eval_samples``  generated samples per evaluation (default 1000)
``[set]``           ``"dotted.key" = value`` applied to every point
``[grid]``          grid mode: ``"dotted.key" = [values]``; every combination is a point
``[random]``        random mode: ``"dotted.key" = {low, high}`` (uniform; integers if both
                    bounds are integers), ``{low, high, log = true}`` (log-uniform) or
                    ``[choices]``

Output folder ``OUT``
---------------------
``sweep.json``                 the sweep as resolved: points, overrides, provenance
``quality_classifier.npz``     the quality classifier, trained once by the client
                               (``classifiers/data-<hash>/`` if points use different data)
``points/<id>/``               one run folder per point (config.toml, checkpoint.npz, ...)
``points/<id>/point.json``     the point's id and overrides
``points/<id>/result.json``    written atomically: status ``done`` (metrics, checkpoint,
                               elapsed_s, attempts) or ``failed`` (error, attempts)
``summary.csv``, ``summary.md``, ``plots/*.png``   see :mod:`experiments.sweep_report`

A point id is ``<key=value,...>-<hash>``, the hash being that of the point's full config:
a re-run finds a finished point again whatever the order of the grid, and a point whose
config changed (another base or ``[set]``) is a new point, never a stale result. Re-running
a sweep skips points whose result says ``done`` (for the same ``n_eval_samples``) and
resumes interrupted runs from their last checkpoint. OUT must be on a file system that the
client and every worker share.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import re
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.evaluate import classifier_for, evaluate_run
from analysis.quality import limit_blas_threads
from experiments.report import write_epoch_grid
from experiments.sweep_report import write_report
from training import config as config_mod
from training.config import ConfigError, GanConfig
from training.data import load_dataset
from training.runinfo import atomic_json, run_record
from training.trainer import train_gan

#: Keys a sweep file may hold.
SWEEP_KEYS = ("base", "mode", "samples", "seed", "retries", "n_eval_samples", "set", "grid", "random")
#: Keys of a ``[random]`` range.
RANGE_KEYS = ("low", "high", "log")
MODES = ("grid", "random")
RESULT_FILE = "result.json"
POINT_FILE = "point.json"
#: Longest ``key=value`` part of a point id (characters).
MAX_LABEL = 80
#: Seconds to wait for a ``--scheduler`` to answer (``sweep --connect-timeout``).
CONNECT_TIMEOUT_S = 5.0


class SweepError(ConfigError):
    """A sweep file is invalid; the message is one line naming the key."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep.

    Attributes
    ----------
    index : position in the sweep (grid order or draw order)
    id : folder name under ``OUT/points``
    overrides : the swept keys' values, ``{"dotted.key": value}``
    config : the point's complete GAN config as nested dicts (:func:`training.config.to_dict`)
    """

    index: int
    id: str
    overrides: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file (see the module docstring)."""

    path: str
    base: str
    mode: str
    retries: int
    n_eval_samples: int
    fixed: dict[str, Any]
    swept_keys: tuple[str, ...]
    log_keys: tuple[str, ...]
    points: tuple[Point, ...]
    duplicates: int = 0


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    results : one result record per point, in sweep order (the ``result.json`` contents)
    ran, skipped, failed : numbers of points run now, skipped as done before, failed
    seconds : wall time of the whole sweep (s)
    report : paths of the summary files and plots
    """

    results: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: int
    seconds: float
    report: dict[str, str]


# ------------------------------------------------------------------------------------ sweep file
def load_sweep(path: str) -> Sweep:
    """Read and validate a sweep file; every point's config is built and checked.

    Raises
    ------
    SweepError
        One line starting with ``path`` and naming the bad key.
    """
    data = config_mod.read_toml(path, "sweep file", SweepError)
    try:
        return parse_sweep(data, path)
    except ConfigError as exc:
        raise SweepError(f"{path}: {exc}") from None


def parse_sweep(data: dict[str, Any], path: str) -> Sweep:
    """Validate the parsed TOML of a sweep file found at ``path`` (base is relative to it)."""
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise SweepError(f"unknown sweep key {unknown[0]} (known: {', '.join(SWEEP_KEYS)})")
    mode = _option(data, "mode", str, "grid")
    if mode not in MODES:
        raise SweepError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    misplaced = [k for k in (("random", "samples", "seed") if mode == "grid" else ("grid",)) if k in data]
    if misplaced:
        raise SweepError(f"{misplaced[0]}: not used with mode = {mode!r}")
    base = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)),
                                         _option(data, "base", str, None)))
    try:
        base_cfg = config_mod.load(base, GanConfig)
    except ConfigError as exc:
        raise SweepError(f"base: {exc}") from None
    retries = _option(data, "retries", int, 1, lo=0)
    n_eval_samples = _option(data, "n_eval_samples", int, 1000, lo=2)
    fixed = _table(data, "set", _is_value)
    fixed_cfg = _checked(base_cfg, fixed, "[set] ")
    overrides, log_keys = (_grid_section if mode == "grid" else _random_section)(data, fixed_cfg)
    swept = tuple(overrides[0])
    both = [k for k in swept if k in fixed]
    if both:
        raise SweepError(f"{both[0]} is both in [set] and [{mode}]")
    points = build_points(fixed_cfg, overrides)
    return Sweep(path=path, base=base, mode=mode, retries=retries, n_eval_samples=n_eval_samples,
                 fixed=fixed, swept_keys=swept, log_keys=log_keys, points=tuple(points),
                 duplicates=len(overrides) - len(points))


def _grid_section(data: dict[str, Any], cfg: GanConfig) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The overrides of the ``[grid]`` section (checked against ``cfg``), and no log keys."""
    grid = _table(data, "grid", _is_value)
    _check_grid(cfg, grid)
    return grid_overrides(grid), ()


def _random_section(data: dict[str, Any], cfg: GanConfig) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The drawn overrides of the ``[random]`` section (checked against ``cfg``), and its log keys."""
    ranges = _table(data, "random", _is_range_leaf)
    if not ranges:
        raise SweepError("[random]: give at least one \"dotted.key\" = {low = .., high = ..}")
    for key, spec in ranges.items():
        _check_random(cfg, key, spec)
    overrides = random_overrides(ranges, _option(data, "samples", int, None, lo=1),
                                 _option(data, "seed", int, 0, lo=0))
    return overrides, tuple(k for k, s in ranges.items() if isinstance(s, dict) and s.get("log"))


def _option(data: dict[str, Any], key: str, kind: type, default: Any, lo: int | None = None) -> Any:
    """A top-level option of the sweep file (``default`` None = required)."""
    if key not in data:
        if default is None:
            raise SweepError(f"{key}: missing (required)")
        return default
    value = data[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SweepError(f"{key}: expected an integer, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise SweepError(f"{key}: expected a string, got {value!r}")
    if lo is not None and value < lo:
        raise SweepError(f"{key}: {value!r} is below the minimum {lo}")
    return value


def _is_value(value: Any) -> bool:
    return not isinstance(value, dict)


def _is_range_leaf(value: Any) -> bool:
    return not isinstance(value, dict) or any(k in value for k in RANGE_KEYS)


def _table(data: dict[str, Any], name: str, is_leaf: Callable[[Any], bool]) -> dict[str, Any]:
    """Section ``name`` as ``{"dotted.key": value}`` (quoted dotted keys or nested tables)."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SweepError(f"{name}: expected a table of dotted config keys, got {table!r}")
    return _flatten(table, "", is_leaf)


def _flatten(table: dict[str, Any], prefix: str, is_leaf: Callable[[Any], bool]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if is_leaf(value):
            out[prefix + key] = value
        else:
            out.update(_flatten(value, f"{prefix}{key}.", is_leaf))
    return out


def _checked(cfg: GanConfig, overrides: dict[str, Any], where: str) -> GanConfig:
    """``config.override`` with the section named in the error."""
    try:
        return config_mod.override(cfg, overrides)
    except ConfigError as exc:
        raise SweepError(f"{where}{exc}") from None


def _check_grid(cfg: GanConfig, grid: dict[str, Any]) -> None:
    if not grid:
        raise SweepError("[grid]: give at least one \"dotted.key\" = [values]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {key}: expected a non-empty list of values, got {values!r}")
        for value in values:
            _checked(cfg, {key: value}, "[grid] ")
        if len({json.dumps(v, sort_keys=True) for v in values}) < len(values):
            raise SweepError(f"[grid] {key}: a value is listed twice in {values!r}")


def _check_random(cfg: GanConfig, key: str, spec: Any) -> None:
    where = f"[random] {key}"
    if isinstance(spec, list):
        if not spec:
            raise SweepError(f"{where}: empty list of choices")
        for value in spec:
            _checked(cfg, {key: value}, "[random] ")
        return
    if not isinstance(spec, dict):
        raise SweepError(f"{where}: expected {{low = .., high = ..}} or a list of choices, got {spec!r}")
    unknown = [k for k in spec if k not in RANGE_KEYS]
    if unknown:
        raise SweepError(f"{where}: unknown range key {unknown[0]} (known: {', '.join(RANGE_KEYS)})")
    for k in ("low", "high"):
        if k not in spec:
            raise SweepError(f"{where}: missing {k}")
        if isinstance(spec[k], bool) or not isinstance(spec[k], (int, float)):
            raise SweepError(f"{where}: {k} must be a number, got {spec[k]!r}")
    if spec["low"] > spec["high"]:
        raise SweepError(f"{where}: low {spec['low']} is above high {spec['high']}")
    if not isinstance(spec.get("log", False), bool):
        raise SweepError(f"{where}: log must be true or false, got {spec['log']!r}")
    if spec.get("log") and spec["low"] <= 0:
        raise SweepError(f"{where}: log = true needs low > 0, got {spec['low']}")
    for k in ("low", "high"):
        _checked(cfg, {key: spec[k]}, "[random] ")


# ---------------------------------------------------------------------------------------- points
def grid_overrides(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def random_overrides(ranges: dict[str, Any], samples: int, seed: int) -> list[dict[str, Any]]:
    """``samples`` draws of every key's range (reproducible for a given ``seed``)."""
    rng = np.random.default_rng(seed)
    return [{key: draw(rng, spec) for key, spec in ranges.items()} for _ in range(samples)]


def draw(rng: np.random.Generator, spec: Any) -> Any:
    """One value of a ``[random]`` spec: a list (uniform choice) or ``{low, high[, log]}``.

    Integer bounds give integers (uniform on ``low..high``, or a rounded log-uniform draw);
    floats are rounded to 6 significant digits (readable configs) within the bounds.
    """
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    ints = isinstance(low, int) and isinstance(high, int)
    if ints and not log:
        return int(rng.integers(low, high + 1))
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if log else rng.uniform(low, high)
    if ints:
        return int(min(high, max(low, round(value))))
    return float(min(high, max(low, float(f"{value:.6g}"))))


def build_points(cfg: GanConfig, overrides: Sequence[dict[str, Any]]) -> list[Point]:
    """Validated points of ``overrides`` applied to ``cfg``; repeated configs are dropped."""
    points: list[Point] = []
    seen = set()
    for ov in overrides:
        full = config_mod.to_dict(_checked(cfg, ov, f"point {point_label(ov)}: "))
        pid = point_id(ov, full)
        if pid not in seen:
            seen.add(pid)
            points.append(Point(len(points), pid, dict(ov), full))
    return points


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "_".join(_fmt(v) for v in value)
    return str(value)


def point_label(overrides: dict[str, Any]) -> str:
    """``key=value,key=value`` (floats to 4 significant digits)."""
    return ",".join(f"{k}={_fmt(v)}" for k, v in overrides.items())


def config_hash(config: dict[str, Any]) -> str:
    """8 hex digits of the SHA-1 of a config's canonical JSON."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def point_id(overrides: dict[str, Any], config: dict[str, Any]) -> str:
    """Folder name of a point: its label (file-name safe, shortened) and its config hash."""
    label = re.sub(r"[^A-Za-z0-9._=,+-]", "_", point_label(overrides))[:MAX_LABEL]
    return f"{label}-{config_hash(config)}"


# ------------------------------------------------------------------------------- one point (worker)
def run_point(task: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Train (or resume) and evaluate one point; write and return its ``result.json`` record.

    Runs on a Dask worker with one BLAS thread. Any exception propagates to the client,
    which retries the point or records it as failed.

    Parameters
    ----------
    task : dict from :func:`point_task`
    attempt : 1 for the first try of this sweep invocation, 2 for the first retry, ...
    """
    t0 = time.perf_counter()
    run_dir = task["dir"]
    resumed = os.path.exists(os.path.join(run_dir, "config.toml"))
    cfg = config_mod.from_dict(GanConfig, task["config"])
    with limit_blas_threads(1):
        train_gan(cfg, run_dir, resume=resumed, progress=False, on_epoch=write_epoch_grid)
        metrics = evaluate_run(run_dir, n_samples=task["n_eval_samples"],
                               classifier_cache=task["classifier_cache"])
    result = {"status": "done", "point": task["id"], "overrides": task["overrides"],
              "metrics": metrics, "checkpoint": os.path.join(run_dir, "checkpoint.npz"),
              "elapsed_s": time.perf_counter() - t0, "attempts": attempt, "resumed": resumed,
              "n_eval_samples": task["n_eval_samples"], "host": platform.node(),
              "pid": os.getpid(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_json(os.path.join(run_dir, RESULT_FILE), result)
    return result


def point_task(point: Point, out: str, n_eval_samples: int, classifier_cache: str) -> dict[str, Any]:
    """The plain-dict description of a point that a worker needs (absolute paths)."""
    return {"id": point.id, "overrides": point.overrides, "config": point.config,
            "dir": os.path.join(out, "points", point.id), "n_eval_samples": n_eval_samples,
            "classifier_cache": classifier_cache}


def failure_record(task: dict[str, Any], attempts: int, exc: BaseException,
                   tb: Any | None = None) -> dict[str, Any]:
    """The ``result.json`` record of a point that failed ``attempts`` times with ``exc``."""
    return {"status": "failed", "point": task["id"], "overrides": task["overrides"],
            "attempts": attempts, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_tb(tb)) if tb is not None else "",
            "n_eval_samples": task["n_eval_samples"], "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def finished_result(out: str, point: Point, n_eval_samples: int) -> dict[str, Any] | None:
    """The point's recorded result if it is ``done`` with the same evaluation size, else None."""
    try:
        with open(os.path.join(out, "points", point.id, RESULT_FILE)) as fh:
            result = json.load(fh)
    except (OSError, ValueError):
        return None
    done = result.get("status") == "done" and result.get("n_eval_samples") == n_eval_samples
    return result if done else None


# ---------------------------------------------------------------------------------- client side
def classifier_caches(points: Sequence[Point], out: str) -> dict[str, str]:
    """Point id -> folder of its quality classifier: ``out`` when all points share one data
    config, else ``out/classifiers/data-<hash>`` per data config."""
    keys = {p.id: json.dumps(p.config["data"], sort_keys=True) for p in points}
    if len(set(keys.values())) <= 1:
        return {pid: out for pid in keys}
    return {pid: os.path.join(out, "classifiers", "data-" + hashlib.sha1(k.encode()).hexdigest()[:8])
            for pid, k in keys.items()}


def train_classifiers(points: Sequence[Point], caches: dict[str, str]) -> None:
    """Train (or load) each needed quality classifier once, before any worker needs it."""
    first = {}
    for p in points:
        first.setdefault(caches[p.id], p)
    for folder, p in first.items():
        classifier_for(load_dataset(config_mod.from_dict(GanConfig, p.config).data), folder)


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail at once when nothing listens at a ``tcp://host:port`` scheduler address (a refused
    connection is known in milliseconds; Dask's client would retry until its timeout).
    Other protocols (``tls://``, ``ucx://``) are left to the client's own timeout.

    Raises
    ------
    SweepError
        The address is not ``[tcp://]host:port``, or the connection fails within ``timeout`` s.
    """
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--scheduler {address}: expected an address tcp://HOST:PORT, e.g. tcp://10.0.0.1:8786")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise SweepError(f"--scheduler {address}: cannot connect ({why}); start "
                         f"one with `dask scheduler`, or check the address (--connect-timeout waits longer)") from None


@contextlib.contextmanager
def open_client(scheduler: str | None, workers: int, scratch: str | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A ``distributed.Client``: of ``scheduler`` (an address) or of a new LocalCluster of
    ``workers`` single-threaded worker processes (closed on exit), whose scratch space is
    ``scratch`` (one folder, reused by the next cluster; default: a temporary folder removed on
    exit, where dask's own default would stay in the system temp folder)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout=timeout) as client:
            yield client
        return
    with contextlib.ExitStack() as stack:
        folder = scratch or stack.enter_context(tempfile.TemporaryDirectory(prefix="spiking_gan_dask_"))
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, local_directory=folder,
            dashboard_address=None, silence_logs=logging.ERROR))
        yield stack.enter_context(Client(cluster))


def running_points(client: Any, keys: set) -> int:
    """Tasks among ``keys`` that workers are executing now (at most one per thread)."""
    nthreads = client.nthreads()
    return sum(min(nthreads.get(w, 1), sum(k in keys for k in ks))
               for w, ks in client.processing().items())


def execute(client: Any, tasks: dict[str, dict[str, Any]], retries: int, bar: Any) -> dict[str, dict]:
    """Run every task on ``client``; a failing one is resubmitted up to ``retries`` times,
    then recorded as failed (``result.json``). Returns point id -> result record."""
    from distributed import wait

    attempts = dict.fromkeys(tasks, 1)
    futures = {client.submit(run_point, task, 1, pure=False): pid for pid, task in tasks.items()}
    results: dict[str, dict] = {}
    counts = {"done": 0, "failed": 0}
    shown = 0  # points counted on the bar
    while futures:
        try:
            finished = wait(list(futures), timeout=1.0, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            finished = set()
        for fut in finished:
            pid = futures.pop(fut)
            if fut.status == "finished":
                results[pid] = fut.result()
            elif attempts[pid] <= retries:
                attempts[pid] += 1
                futures[client.submit(run_point, tasks[pid], attempts[pid], pure=False)] = pid
                continue
            else:
                results[pid] = failure_record(tasks[pid], attempts[pid], fut.exception(), fut.traceback())
                atomic_json(os.path.join(tasks[pid]["dir"], RESULT_FILE), results[pid])
            counts[results[pid]["status"]] += 1
        bar.set_postfix(**counts, running=running_points(client, {f.key for f in futures}), refresh=False)
        bar.update(sum(counts.values()) - shown)
        shown = sum(counts.values())
    return results


def sweep_record(sweep: Sweep) -> dict[str, Any]:
    """``sweep.json``: the resolved sweep and the provenance of this invocation."""
    return {"sweep_file": os.path.abspath(sweep.path), "base": sweep.base, "mode": sweep.mode,
            "retries": sweep.retries, "n_eval_samples": sweep.n_eval_samples, "set": sweep.fixed,
            "swept_keys": list(sweep.swept_keys), "log_keys": list(sweep.log_keys),
            "points": [{"id": p.id, "overrides": p.overrides} for p in sweep.points],
            "run": run_record(None, {"kind": "sweep"})}


def run_sweep(sweep: Sweep, out: str, scheduler: str | None = None, workers: int = 2,
              retries: int | None = None, progress: bool = True,
              connect_timeout: float = CONNECT_TIMEOUT_S) -> SweepOutcome:
    """Run the points of ``sweep`` not yet done into ``out``, then write the report.

    Parameters
    ----------
    sweep : from :func:`load_sweep`
    out : output folder (created)
    scheduler : address of a running Dask scheduler (``tcp://host:port``); None = a
        LocalCluster of ``workers`` processes with one thread each
    workers : worker processes of the LocalCluster
    retries : extra attempts of a failing point (None = the sweep file's ``retries``)
    progress : tqdm bar (points done / failed / running)
    connect_timeout : seconds to wait for ``scheduler`` to answer
    """
    from tqdm import tqdm


    t0 = time.perf_counter()
    out = os.path.abspath(out)
    os.makedirs(os.path.join(out, "points"), exist_ok=True)
    atomic_json(os.path.join(out, "sweep.json"), sweep_record(sweep))
    results = {p.id: r for p in sweep.points
               if (r := finished_result(out, p, sweep.n_eval_samples)) is not None}
    todo = [p for p in sweep.points if p.id not in results]
    skipped = len(results)
    if todo:
        caches = classifier_caches(sweep.points, out)  # all points: the same folders on every re-run
        train_classifiers(todo, caches)
        tasks = {p.id: point_task(p, out, sweep.n_eval_samples, caches[p.id]) for p in todo}
        for p in todo:
            os.makedirs(tasks[p.id]["dir"], exist_ok=True)
            atomic_json(os.path.join(tasks[p.id]["dir"], POINT_FILE),
                        {"id": p.id, "index": p.index, "overrides": p.overrides})
        with open_client(scheduler, workers, os.path.join(out, ".dask-scratch"), connect_timeout) as client, \
                tqdm(total=len(sweep.points), initial=skipped, desc="sweep", unit="point",
                     disable=not progress) as bar:
            bar.set_postfix(done=0, failed=0, running=0)
            results.update(execute(client, tasks, sweep.retries if retries is None else retries, bar))
    ordered = [results[p.id] for p in sweep.points]
    report = write_report(out, ordered, sweep.swept_keys, sweep.log_keys)
    return SweepOutcome(results=ordered, ran=len(todo), skipped=skipped,
                        failed=sum(r["status"] == "failed" for r in ordered),
                        seconds=time.perf_counter() - t0, report=report)
