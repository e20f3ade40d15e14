"""Report of a parameter sweep (:mod:`experiments.sweep`): summary table and plots.

Written into the sweep's output folder ``OUT``:

``summary.csv``
    One row per point, in sweep order: ``point`` (its folder under ``OUT/points``), the
    swept keys, ``status`` (``done`` or ``failed``), ``attempts``, ``elapsed_s`` (s), every
    scalar metric of :func:`analysis.evaluate.evaluate_run` (per-layer lists are left out;
    they stay in each point's ``result.json``) and ``error`` (first line; failed points).
``summary.md``
    The same table in Markdown (numbers to 4 significant digits).
``plots/<key>.png``
    For every swept key: decision time (ms), spikes per sample (G + D) and classifier-FID
    against the key's value. Dots are single points, the line (numeric keys) or bar
    (categorical keys such as ``loss.kind``) their mean over the other swept keys; a
    categorical other key with 2 to 6 values splits the points into coloured groups.

Everything here is a pure function of the result records (the ``result.json`` contents);
nothing is read back from disk.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.plots import new_figure, save_figure
from training.runinfo import atomic_write

#: Metrics plotted against every swept key: (metric, y-axis label).
PLOTTED = (("decision_time_ms", "D decision time (ms)\nfrom D's output window"),
           ("spikes_total", "spikes per sample (G + D)"),
           ("classifier_fid", "classifier-FID (lower is better)"))
#: Metrics first in the table, in this order; the others follow alphabetically.
HEADLINE = ("decision_time_ms", "spikes_total", "spikes_g", "spikes_d", "spikes_d_to_decision",
            "classifier_fid", "kid", "class_coverage", "mean_confidence", "inception_score",
            "d_accuracy_real", "d_accuracy_fake")
#: Units of config keys, by their last part (for axis labels).
UNITS = {"t_max": "steps", "dt_ms": "ms", "latency": "steps", "gamma": "steps", "alpha": "steps",
         "thresholds": "mV", "init_hidden": "mV", "init_output": "mV", "hidden": "neurons",
         "noise_dim": "neurons", "epochs": "epochs", "batch_size": "images",
         "max_train": "images"}
#: A categorical key with this many values at most splits the points into groups.
MAX_GROUPS = 6
#: Keys whose numbers name things rather than measure them: plotted as categories, never
#: joined by lines (seed 3 is not "between" seeds 2 and 4).
NOMINAL_KEYS = ("seed",)


# ------------------------------------------------------------------------------------- table
def scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers and strings of a metrics dict (lists and tables left out)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def summary_rows(results: Sequence[dict[str, Any]], swept_keys: Sequence[str]) -> list[dict[str, Any]]:
    """One flat row per result record (see the module docstring for the columns)."""
    rows = []
    for r in results:
        row = {"point": r["point"], **{k: r["overrides"].get(k) for k in swept_keys},
               "status": r["status"], "attempts": r.get("attempts"), "elapsed_s": r.get("elapsed_s")}
        row.update(scalar_metrics(r.get("metrics", {})))
        row["error"] = r.get("error", "").splitlines()[0] if r.get("error") else ""
        rows.append(row)
    return rows


def summary_columns(rows: Sequence[dict[str, Any]], swept_keys: Sequence[str]) -> list[str]:
    """Column order: point, swept keys, status, attempts, elapsed_s, metrics, error."""
    first = ["point", *swept_keys, "status", "attempts", "elapsed_s"]
    metrics = {k for row in rows for k in row if k not in first and k != "error"}
    ordered = [k for k in HEADLINE if k in metrics] + sorted(metrics - set(HEADLINE))
    return first + ordered + ["error"]


def _cell(value: Any, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}" if digits else repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The table as CSV (full precision; lists as JSON)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def markdown_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The table as Markdown (numbers to 4 significant digits)."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(_cell(row.get(c), 4)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- plots
def is_categorical(values: Sequence[Any], key: str = "") -> bool:
    """True unless every value is a real number (booleans, strings and lists are categories)
    and ``key`` is a quantity (not one of :data:`NOMINAL_KEYS`, such as the seed)."""
    if key.rsplit(".", 1)[-1] in NOMINAL_KEYS:
        return True
    return not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def axis_label(key: str) -> str:
    """``key (unit)`` for keys with a unit, else the key."""
    unit = UNITS.get(key.rsplit(".", 1)[-1])
    return f"{key} ({unit})" if unit else key


def group_key(rows: Sequence[dict[str, Any]], key: str, swept_keys: Sequence[str]) -> str | None:
    """The first other swept key that is categorical with 2..MAX_GROUPS values, if any."""
    for other in swept_keys:
        values = [r[other] for r in rows]
        n = len({_cell(v) for v in values})
        if other != key and is_categorical(values) and 2 <= n <= MAX_GROUPS:  # seeds: averaged, not a colour
            return other
    return None


def _categories(values: Sequence[Any]) -> list[str]:
    """Distinct labels in order of first appearance."""
    return list(dict.fromkeys(_cell(v) for v in values))


def _positions(values: Sequence[Any], categorical: bool) -> tuple[np.ndarray, list[str]]:
    """X coordinates of ``values`` (category indices, or the numbers) and the category labels."""
    if not categorical:
        return np.asarray(values, dtype=float), []
    labels = _categories(values)
    return np.array([labels.index(_cell(v)) for v in values], dtype=float), labels


def _draw_panel(ax, x: np.ndarray, y: np.ndarray, groups: list[str], categorical: bool) -> None:
    """Dots for single points, and the mean per x value (a bar mark or a line) per group."""
    names = list(dict.fromkeys(groups))
    for g, name in enumerate(names):
        colour = f"C{g}"
        sel = np.array([gr == name for gr in groups]) & np.isfinite(y)
        offset = (g - (len(names) - 1) / 2) * 0.12 if categorical else 0.0
        xs, ys = x[sel] + offset, y[sel]
        ax.scatter(xs, ys, s=18, alpha=0.5, color=colour, label=name or None, zorder=3)
        ux = np.unique(xs)
        means = np.array([ys[xs == u].mean() for u in ux])
        if categorical:
            ax.scatter(ux, means, marker="_", s=500, linewidths=2.5, color=colour, zorder=4)
        else:
            ax.plot(ux, means, "-", color=colour, lw=1.5, zorder=2)


def plot_key(rows: Sequence[dict[str, Any]], key: str, swept_keys: Sequence[str], path: str,
             log: bool = False) -> str:
    """One PNG with :data:`PLOTTED` against ``key`` for the ``done`` rows; returns ``path``."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    done = [r for r in rows if r["status"] == "done"]
    categorical = is_categorical([r[key] for r in done], key)
    x, labels = _positions([r[key] for r in done], categorical)
    by = group_key(done, key, swept_keys)
    groups = [f"{by} = {_cell(r[by])}" if by else "" for r in done]
    averaged = [k for k in swept_keys if k not in (key, by)]
    fig = new_figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, len(PLOTTED))
    for ax, (metric, ylabel) in zip(axes, PLOTTED):
        y = np.array([r.get(metric, math.nan) for r in done], dtype=float)
        _draw_panel(ax, x, y, groups, categorical)
        ax.set_xlabel(axis_label(key))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if categorical:
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        elif log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif all(float(v).is_integer() for v in x):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if by:
        axes[0].legend(fontsize=8)
    title = f"sweep over {key}: {len(done)} points" + (f"; colour: {by}" if by else "")
    if averaged:
        title += (f"; dots: single points, {'bars' if categorical else 'lines'}: "
                  f"mean over {', '.join(averaged)}")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=110)


def plot_file_name(key: str) -> str:
    """File name of a key's plot (file-name safe)."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", key) + ".png"


# ------------------------------------------------------------------------------------ report
def write_report(out: str, results: Sequence[dict[str, Any]], swept_keys: Sequence[str],
                 log_keys: Sequence[str] = ()) -> dict[str, str]:
    """Write ``summary.csv``, ``summary.md`` and ``plots/<key>.png`` into ``out``.

    Parameters
    ----------
    out : the sweep's output folder
    results : one ``result.json`` record per point, in sweep order
    swept_keys : the keys varied by the sweep (table columns, one plot each)
    log_keys : keys drawn log-uniformly (log x-axis)

    Returns
    -------
    dict: ``"csv"``, ``"md"`` and ``"plot:<key>"`` -> path (no plots when no point is done)
    """
    rows = summary_rows(results, swept_keys)
    columns = summary_columns(rows, swept_keys)
    paths = {"csv": os.path.join(out, "summary.csv"), "md": os.path.join(out, "summary.md")}
    atomic_write(paths["csv"], csv_text(rows, columns))
    atomic_write(paths["md"], markdown_text(rows, columns))
    if any(r["status"] == "done" for r in rows):
        os.makedirs(os.path.join(out, "plots"), exist_ok=True)
        for key in swept_keys:
            paths[f"plot:{key}"] = plot_key(rows, key, swept_keys,
                                            os.path.join(out, "plots", plot_file_name(key)),
                                            log=key in log_keys)
    return paths
