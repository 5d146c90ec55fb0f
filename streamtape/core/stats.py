"""Percentiles, computed one way everywhere: pacing lateness, the demo, stats, benchmarks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    """The ``qs`` percentiles (each in [0, 100]) of ``values``, by nearest rank.

    Nearest rank returns a value that occurred (a p99 lateness is a real read's), and
    p0 is the minimum, p100 the maximum. Empty input gives NaN for each.
    """
    data = sorted(values)
    n = len(data)
    out: list[float] = []
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within [0, 100], got {q!r}")
        if n == 0:
            out.append(float("nan"))
            continue
        rank = max(1, math.ceil(q / 100 * n))
        out.append(data[rank - 1])
    return out


def percentile(values: Iterable[float], q: float) -> float:
    """One percentile of ``values`` (see `percentiles`)."""
    return percentiles(values, (q,))[0]
