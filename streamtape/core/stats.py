"""Percentiles, computed one way everywhere: stats, reports, replay lateness, the demo.

Two rules, named: ``linear`` interpolates between the closest ranks (NumPy's default,
DuckDB's ``quantile_cont``), so ``stats`` and the README's Parquet SQL agree;
``nearest`` returns a value that occurred (a p99 lateness is a real read's), which
pacing and the benchmarks report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["percentile", "percentiles"]

Method = Literal["linear", "nearest"]


def percentiles(
    values: Iterable[float], qs: Sequence[float], *, method: Method = "linear"
) -> list[float]:
    """The ``qs`` percentiles (each in [0, 100]) of ``values``, sorted once.

    Raises ValueError on empty ``values`` or a ``q`` outside [0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    n = len(ordered)
    out: list[float] = []
    for q in qs:
        if not 0.0 <= q <= 100.0 or math.isnan(q):
            raise ValueError(f"percentile q must be within [0, 100], got {q!r}")
        if method == "nearest":
            out.append(float(ordered[max(1, math.ceil(q / 100 * n)) - 1]))
            continue
        rank = (n - 1) * q / 100.0
        low = math.floor(rank)
        high = min(low + 1, n - 1)
        out.append(float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low)))
    return out


def percentile(values: Iterable[float], q: float, *, method: Method = "linear") -> float:
    """One percentile of ``values`` (see `percentiles`)."""
    return percentiles(values, (q,), method=method)[0]
