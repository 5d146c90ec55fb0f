"""Parquet tables of a corpus, so an existing engine (DuckDB, Polars, Spark) analyses it.

Two tables: ``exchanges.parquet`` (one row per exchange: where, model, status, how it
ended, TTFT, duration, tokens/s, usage, stop reason, the answer's text) and
``reads.parquet`` (one row per network read: its exchange, arrival time and size).
They join on ``(file, number)``. pyarrow is an optional dependency (the ``analysis``
extra); it is imported only here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streamtape.analysis.parallel import map_files
from streamtape.analysis.records import read_records
from streamtape.errors import MissingExtraError

__all__ = ["ExportRows", "export_parquet", "load_rows"]


class ExportRows(msgspec.Struct):
    exchanges: list[dict[str, Any]]
    reads: list[dict[str, Any]]


def load_rows(path: Path) -> ExportRows:
    """The rows of one cassette (module-level, for the process pool)."""
    exchanges, reads = [], []
    for record in read_records(path):
        m = record.metrics
        row: dict[str, Any] = msgspec.to_builtins(m)
        s = record.summary
        usage = s.usage if s is not None else None
        row.update(
            input_tokens=usage.input_tokens if usage else None,
            reported_output_tokens=usage.output_tokens if usage else None,
            text=s.text if s is not None else None,
            tool_calls=len(s.tool_calls) if s is not None else 0,
        )
        exchanges.append(row)
        reads += [
            {
                "file": m.file,
                "number": m.number,
                "read": i,
                "t_ms": r.t_ns / 1e6,
                "bytes": len(r.data),
            }
            for i, r in enumerate(record.exchange.reads, start=1)
        ]
    return ExportRows(exchanges, reads)


def export_parquet(
    files: Sequence[Path],
    directory: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write ``exchanges.parquet`` and ``reads.parquet`` into ``directory``; row counts."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError(
            "export --parquet needs pyarrow: pip install 'streamtape[analysis]'"
        ) from None
    parts = map_files(load_rows, files, jobs=jobs, on_done=on_done)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    exchanges = [row for p in parts for row in p.exchanges]
    reads = [row for p in parts for row in p.reads]
    pq.write_table(
        pa.Table.from_pylist(exchanges, schema=_exchange_schema(pa)), out / "exchanges.parquet"
    )
    pq.write_table(pa.Table.from_pylist(reads, schema=_read_schema(pa)), out / "reads.parquet")
    return {"exchanges": len(exchanges), "reads": len(reads)}


def _exchange_schema(pa: Any) -> Any:
    s, i, f, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    return pa.schema(
        [
            ("file", s), ("number", i), ("method", s), ("url", s), ("path", s), ("model", s),
            ("status", i), ("outcome", s), ("completion", b), ("ok", b), ("error", b), ("cut", b),
            ("reads", i), ("bytes", i), ("started_at_ns", i), ("headers_ms", f), ("ttft_ms", f),
            ("duration_ms", f), ("output_tokens", i), ("tokens_estimated", b),
            ("tokens_per_s", f), ("stop_reason", s), ("input_tokens", i),
            ("reported_output_tokens", i), ("text", s), ("tool_calls", i),
        ]
    )  # fmt: skip


def _read_schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("file", pa.string()),
            ("number", pa.int64()),
            ("read", pa.int64()),
            ("t_ms", pa.float64()),
            ("bytes", pa.int64()),
        ]
    )
