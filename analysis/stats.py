"""Small statistics shared by the analyses (below every user: no project imports)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value; NaN for none)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1 or np.all(v == v[0]):                 # no round-off noise for equal values
        return float(v.mean()), 0.0
    return float(v.mean()), float(v.std(ddof=1))
