"""One row per recorded exchange: where it is, what it answered, and how fast.

Exchanges are numbered from 1 within their cassette, as `NoMatchError` and ``ls`` number
them. Reading goes through the cassette index, so one exchange is decoded without
decoding the ones before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from streamtape.core.cassette import Cassette, Entry
from streamtape.core.exchange import Exchange, Outcome
from streamtape.errors import CassetteError, StreamtapeError
from streamtape.formats import assemble, summarize
from streamtape.formats.summary import Summary

__all__ = [
    "Metrics",
    "Record",
    "cassette_files",
    "completion_summary",
    "metrics_of",
    "pick",
    "read_records",
    "record_of",
]

CUT_PROBLEMS = frozenset({"missing_done", "truncated_tail"})
"""Problems that mean the stream stopped before its end marker."""
ERROR_PROBLEMS = frozenset({"error_event", "invalid_json", "invalid_chunk"})
"""Problems that mean the upstream or a gateway sent something broken."""
CHARS_PER_TOKEN = 4.0
"""The usual rule of thumb, for streams whose usage was not reported."""


class Metrics(msgspec.Struct, kw_only=True):
    """The facts ``ls``, ``stats`` and the exports share about one exchange."""

    file: str
    number: int
    """1-based position in the cassette."""
    method: str
    url: str
    path: str
    model: str | None
    status: int
    outcome: str
    """How the body ended (the recorded outcome, or the stream's first problem)."""
    completion: bool
    """Whether the exchange holds a completion (stream or JSON) rather than other JSON."""
    ok: bool
    error: bool
    cut: bool
    reads: int
    bytes: int
    started_at_ns: int
    headers_ms: float
    ttft_ms: float | None
    duration_ms: float
    output_tokens: int | None
    tokens_estimated: bool
    tokens_per_s: float | None
    stop_reason: str | None


class Record(msgspec.Struct, kw_only=True):
    """An exchange, its summary (None when it is not a completion) and its metrics."""

    exchange: Exchange
    summary: Summary | None
    metrics: Metrics

    @property
    def label(self) -> str:
        return f"{self.metrics.file}#{self.metrics.number}"


def cassette_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The cassettes named: files as given, folders searched for ``*.tape`` (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.tape") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise CassetteError(f"{path}: no such cassette file or folder")
    return found


def completion_summary(exchange: Exchange) -> Summary | None:
    """The neutral summary of a completion, or None for other answers (embeddings, models)."""
    try:
        summary = summarize(assemble(exchange))
    except (StreamtapeError, TypeError):
        return None
    if not summary.outputs and not exchange.is_event_stream:
        return None
    return summary


def _model_of(exchange: Exchange, summary: Summary | None) -> str | None:
    if summary is not None and summary.model:
        return summary.model
    try:
        body = msgspec.json.decode(exchange.request.body) if exchange.request.body else None
    except msgspec.DecodeError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def _tokens(summary: Summary) -> tuple[int, bool]:
    if summary.usage.output_tokens is not None:
        return summary.usage.output_tokens, False
    chars = sum(
        len(o.text)
        + len(o.refusal or "")
        + len(o.reasoning or "")
        + sum(len(c.arguments_text) for c in o.tool_calls)
        for o in summary.outputs
    )
    return round(chars / CHARS_PER_TOKEN), True


def _outcome(exchange: Exchange, summary: Summary | None) -> tuple[str, bool, bool]:
    """How it ended, whether that is an error, whether it was cut."""
    kinds = [p.kind for p in summary.problems] if summary is not None else []
    bad = [k for k in kinds if k in ERROR_PROBLEMS | CUT_PROBLEMS]
    if exchange.outcome is not Outcome.COMPLETE:
        ended = exchange.outcome.value
    else:
        ended = bad[0] if bad else "complete"
    error = (
        exchange.status >= 400
        or exchange.outcome in (Outcome.UPSTREAM_ERROR, Outcome.TIMEOUT)
        or any(k in ERROR_PROBLEMS for k in kinds)
    )
    cut = not error and (
        exchange.outcome is Outcome.CLIENT_CLOSED or any(k in CUT_PROBLEMS for k in kinds)
    )
    return ended, error, cut


def metrics_of(file: str, number: int, exchange: Exchange, summary: Summary | None) -> Metrics:
    """The row of one exchange."""
    ended, error, cut = _outcome(exchange, summary)
    ttft = tokens_per_s = None
    tokens: int | None = None
    estimated = False
    if summary is not None:
        if summary.t_first_ns is not None:
            ttft = summary.t_first_ns / 1e6
        tokens, estimated = _tokens(summary)
        first, last = summary.t_first_ns, summary.t_last_ns
        if first is not None and last is not None and last > first and tokens:
            tokens_per_s = tokens / ((last - first) / 1e9)
    return Metrics(
        file=file,
        number=number,
        method=exchange.method,
        url=exchange.url,
        path=urlsplit(exchange.url).path or "/",
        model=_model_of(exchange, summary),
        status=exchange.status,
        outcome=ended,
        completion=summary is not None,
        ok=summary.ok if summary is not None else exchange.status < 400 and not error,
        error=error,
        cut=cut,
        reads=len(exchange.reads),
        bytes=sum(len(r.data) for r in exchange.reads),
        started_at_ns=exchange.started_at_ns,
        headers_ms=exchange.headers_ns / 1e6,
        ttft_ms=ttft,
        duration_ms=exchange.end_ns / 1e6,
        output_tokens=tokens,
        tokens_estimated=estimated,
        tokens_per_s=tokens_per_s,
        stop_reason=summary.stop_reason if summary is not None else None,
    )


def record_of(file: str, number: int, exchange: Exchange) -> Record:
    """Summary and metrics of exchange ``number`` of ``file``."""
    summary = completion_summary(exchange)
    return Record(
        exchange=exchange, summary=summary, metrics=metrics_of(file, number, exchange, summary)
    )


def read_records(source: str | os.PathLike[str] | Cassette) -> Iterator[Record]:
    """Every exchange of one cassette as a `Record`, in file order.

    Pass an open `Cassette` to see its ``tail`` (a cut last record) afterwards.
    """
    tape = source if isinstance(source, Cassette) else Cassette.open(source)
    for number, exchange in enumerate(tape, start=1):
        yield record_of(str(tape.path), number, exchange)


def pick(tape: Cassette, number: int) -> tuple[Entry, Exchange]:
    """Exchange ``number`` (from 1) by random access: the index is read, one record decoded."""
    if number < 1:
        raise CassetteError(f"{tape.path}: exchanges are numbered from 1, not {number}")
    count = 0
    for count, entry in enumerate(tape.entries(), start=1):
        if count == number:
            return entry, tape.get(entry)
    held = f"it holds {count}" if count else "it holds none"
    raise CassetteError(f"{tape.path}: no exchange #{number} ({held}; see `streamtape ls`)")
