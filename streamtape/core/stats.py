"""Order statistics shared by every module that summarises timings (replay lateness, stats).

One definition of a percentile, so ``stats``, the Parquet SQL in the README and the
replay figures all agree: linear interpolation between closest ranks (NumPy's default,
DuckDB's ``quantile_cont``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation.

    Raises ValueError on an empty sequence or a ``q`` outside [0, 100].
    """
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile q must be within [0, 100], got {q!r}")
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    frac = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * frac)
