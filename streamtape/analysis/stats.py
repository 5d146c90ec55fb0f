"""Latency and reliability per model and endpoint over any number of recordings.

Percentiles use the one shared definition (`streamtape.core.stats.percentile`, linear
interpolation), which is DuckDB's ``quantile_cont``, so the README's SQL over the
Parquet export gives the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from streamtape.analysis.records import Metrics, read_records
from streamtape.core.stats import percentile

__all__ = ["PERCENTILES", "Distribution", "GroupStats", "group_stats", "load_metrics"]

PERCENTILES = (50.0, 90.0, 99.0)


class Distribution(msgspec.Struct, kw_only=True):
    """Count and percentiles of one measure; the figures are None when nothing was measured."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls(count=0)
        p50, p90, p99 = (percentile(values, q) for q in PERCENTILES)
        return cls(
            count=len(values),
            p50=p50,
            p90=p90,
            p99=p99,
            mean=sum(values) / len(values),
            min=min(values),
            max=max(values),
        )


class GroupStats(msgspec.Struct, kw_only=True):
    """One model on one endpoint."""

    model: str | None
    endpoint: str
    """``METHOD /path``."""
    exchanges: int
    errors: int
    cuts: int
    error_rate: float
    cut_rate: float
    ttft_ms: Distribution
    tokens_per_s: Distribution
    duration_ms: Distribution


def load_metrics(path: Path) -> list[Metrics]:
    """The metrics of every exchange in one cassette (module-level, for the process pool)."""
    return [record.metrics for record in read_records(path)]


def group_stats(metrics: Iterable[Metrics]) -> list[GroupStats]:
    """Stats per (model, endpoint), sorted by endpoint then model."""
    groups: dict[tuple[str, str], list[Metrics]] = {}
    for m in metrics:
        groups.setdefault((f"{m.method} {m.path}", m.model or ""), []).append(m)
    out = []
    for (endpoint, model), rows in sorted(groups.items()):
        errors = sum(m.error for m in rows)
        cuts = sum(m.cut for m in rows)
        out.append(
            GroupStats(
                model=model or None,
                endpoint=endpoint,
                exchanges=len(rows),
                errors=errors,
                cuts=cuts,
                error_rate=errors / len(rows),
                cut_rate=cuts / len(rows),
                ttft_ms=Distribution.of([m.ttft_ms for m in rows if m.ttft_ms is not None]),
                tokens_per_s=Distribution.of(
                    [m.tokens_per_s for m in rows if m.tokens_per_s is not None]
                ),
                duration_ms=Distribution.of([m.duration_ms for m in rows]),
            )
        )
    return out
