"""Format-neutral pieces every assembler shares: what went wrong (`Problem`) and how a stream ended.

Chat, text completions, the Responses API and Anthropic Messages all report their
faults the same way, so diff, stats and reports read one shape whatever the format.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol, TypeVar, Union

import msgspec

from streamtape.core.exchange import Exchange, Read
from streamtape.core.exchange import Outcome as ExchangeOutcome
from streamtape.core.sse import SSEEvent, SSEParser
from streamtape.errors import SSEError


class Parts(NamedTuple):
    """A source taken apart once: body bytes, timed reads (when known), exchange (when given).

    `formats.assemble` hands this to the format it picked, so an exchange's body is
    joined from its reads once, not again by every step.
    """

    body: bytes
    reads: list[Read] | None
    exchange: Exchange | None


Source = Union[Parts, bytes, bytearray, memoryview, Exchange, Iterable[bytes], Iterable[Read]]  # noqa: UP007
"""What every ``assemble`` takes: body bytes, an iterable of reads (timed or not), an Exchange
(or `Parts` already taken apart)."""
ReadTimes = tuple[list[int], list[int]]
"""(end offset of each read, its arrival time): maps a byte offset to when it arrived."""


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Something that went wrong or was unusual in a stream, and where.

    ``kind`` is one of: ``error_event`` (the server sent ``{"error": ...}``),
    ``invalid_json``, ``invalid_chunk`` (JSON, but not a chunk), ``json_fallback``
    (msgspec refused the JSON, Python's ``json`` read it: NaN, -Infinity, lone
    surrogates), ``missing_done``, ``truncated_tail`` (the last event had no blank line
    after it), ``after_done`` (events after ``[DONE]``), ``skipped_chunk`` (an ``object``
    that is not a chunk of this stream, e.g. Azure's filter placeholder),
    ``transport`` (the recorded exchange ended in an error), ``empty`` (no chunk at all),
    ``invalid_sse`` (the bytes broke an SSE limit), ``invalid_utf8`` (a payload that is
    not UTF-8, read with U+FFFD in place of the bad bytes). Formats add their own.
    """

    kind: str
    message: str
    event_index: int | None = None
    """0-based index of the SSE event (counting every dispatched event with data)."""
    offset: int | None = None
    """Byte offset of the event's first byte in the response body."""
    t_ns: int | None = None
    """Arrival time of the event, when the reads were timed."""


BAD_PROBLEMS = frozenset(
    {
        "error_event",
        "invalid_json",
        "invalid_chunk",
        "invalid_sse",
        "invalid_utf8",
        "truncated_tail",
        "transport",
        "empty",
    }
)
"""Problem kinds that mean the response is not a complete, well-formed one (``ok`` is false)."""


class StreamOutcome(msgspec.Struct, kw_only=True):
    """How the stream ended; not part of the OpenAI-shaped output.

    ``ok`` is true when the stream's last event (``[DONE]``, ``message_stop``,
    ``response.completed``) or a whole non-stream body arrived and no problem of a
    `BAD_PROBLEMS` kind was seen (a stream with no chunk at all is ``empty``).
    """

    done: bool = False
    """``data: [DONE]`` was seen (or the body was a complete non-stream JSON object)."""
    error: Any = None
    """The ``error`` value of the first mid-stream error event, if any."""
    problems: list[Problem] = msgspec.field(default_factory=list)
    events: int = 0
    """SSE events with data (``[DONE]`` included)."""
    chunks: int = 0
    """Chunks that were assembled."""
    streamed: bool = True
    """False when the body was a single (non-stream) JSON object."""
    t_first_ns: int | None = None
    """Arrival time of the first chunk, when reads were timed."""
    t_last_ns: int | None = None
    """Arrival time of the last chunk, when reads were timed."""

    @property
    def ok(self) -> bool:
        """A complete, well-formed response: it ended as its format ends, nothing broke."""
        return (
            self.done
            and self.error is None
            and not any(p.kind in BAD_PROBLEMS for p in self.problems)
        )


TRUNCATED_EVENT = "the stream ended inside this event (no blank line after it)"


class ProblemLog:
    """What every assembler has: an ``outcome`` and a way to note a problem in it."""

    outcome: StreamOutcome

    def note(
        self,
        kind: str,
        message: str,
        event_index: int | None = None,
        offset: int | None = None,
        t_ns: int | None = None,
    ) -> None:
        """Record a problem in the outcome."""
        self.outcome.problems.append(
            Problem(kind=kind, message=message, event_index=event_index, offset=offset, t_ns=t_ns)
        )

    def note_truncated(self, index: int | None, offset: int | None, t_ns: int | None) -> None:
        """The stream ended inside event ``index`` (no blank line came after it)."""
        self.note("truncated_tail", TRUNCATED_EVENT, index, offset, t_ns)


SSE_WINDOW = 1 << 20
"""Bytes of an untimed body fed to the parser at once: events never pile up past that."""


def sse_data_events(
    body: bytes, reads: list[Read] | None, on_problem: Callable[[Problem], None]
) -> Iterator[SSEEvent]:
    """The events with data of a body (timed when the reads are), as they are parsed.

    For the event-by-event paths: events go to the assembler read by read, so memory
    follows the result, not the number of events. When the parser gives up part way,
    ``on_problem`` gets an ``invalid_sse`` problem and the events stop there.
    """
    parser = SSEParser()
    pieces: Iterable[tuple[bytes, int | None]] = (
        ((r.data, r.t_ns) for r in reads)
        if reads
        else ((body[i : i + SSE_WINDOW], None) for i in range(0, len(body), SSE_WINDOW))
    )
    try:
        for data, t_ns in pieces:
            for ev in parser.feed(data, t_ns):
                if ev.data:
                    yield ev
        for ev in parser.finish():
            if ev.data:
                yield ev
    except SSEError as exc:
        on_problem(Problem(kind="invalid_sse", message=str(exc), offset=parser.bytes_fed))


def event_time(ev: SSEEvent) -> int | None:
    """When an event arrived: the read that ended it (or began it, when cut)."""
    return ev.t_end_ns if ev.t_end_ns is not None else ev.t_start_ns


def same(value: Any) -> Any:
    """Take a value as it is (for results that may share what was decoded for them alone)."""
    return value


def fix_surrogates(value: Any) -> Any:
    """Join surrogate halves split across deltas; replace lone ones (strings at any depth)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [fix_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {fix_surrogates(k): fix_surrogates(v) for k, v in value.items()}
    return value


def copy_json(v: Any) -> Any:
    """Copy the lists and dicts of a decoded JSON value, so accumulation never mutates it."""
    try:
        return _copy_nested(v)
    except RecursionError:  # nested deeper than Python recurses (msgspec decodes ~1000)
        return _copy_deep(v)


def _copy_nested(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy_nested(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_nested(x) for x in v]
    return v


def _copy_deep(v: Any) -> Any:
    """`copy_json` without recursion: containers are made empty, then filled from a stack."""

    def empty(x: Any) -> Any:
        return {} if isinstance(x, dict) else [] if isinstance(x, list) else x

    root = empty(v)
    stack = [(v, root)] if root is not v else []
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for k, x in items:
            c = empty(x)
            if isinstance(dst, dict):
                dst[k] = c
            else:
                dst.append(c)
            if c is not x:
                stack.append((x, c))
    return root


def body_and_reads(source: Source) -> Parts:
    """The body bytes, the timed reads (when known) and the exchange (when given) of a source."""
    if isinstance(source, Parts):
        return source
    if isinstance(source, Exchange):
        return Parts(source.body, source.reads, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Parts(bytes(source), None, None)
    items = list(source)
    if items and isinstance(items[0], Read):
        timed = [r for r in items if isinstance(r, Read)]
        return Parts(b"".join(r.data for r in timed), timed, None)
    return Parts(b"".join(r for r in items if isinstance(r, (bytes, bytearray))), None, None)


class _HasOutcome(Protocol):
    outcome: StreamOutcome


ResultT = TypeVar("ResultT", bound=_HasOutcome)
BodyPath = Callable[[bytes, Union[list[Read], None]], Union[ResultT, None]]  # noqa: UP007


def assemble_with(
    source: Source,
    *,
    whole: Callable[[bytes], ResultT | None],
    fast: BodyPath[ResultT],
    slow: Callable[[bytes, list[Read] | None], ResultT],
) -> ResultT:
    """One ``assemble`` for every format: a body that looks like one JSON value goes to
    ``whole`` first, then ``fast`` (None: not its shape), then ``slow``; an exchange that
    did not end complete gets a ``transport`` problem."""
    body, reads, exchange = body_and_reads(source)
    result = None
    if body[:64].lstrip(b" \t\r\n\xef\xbb\xbf")[:1] in (b"{", b"["):
        result = whole(body)
    if result is None:
        result = fast(body, reads)
    if result is None:
        result = slow(body, reads)
    if exchange is not None:
        note_transport(result.outcome, exchange, len(body))
    return result


def error_body_outcome(obj: dict[str, Any]) -> StreamOutcome:
    """The outcome of a whole body that is a JSON error (``{"error": ...}`` or bare)."""
    err = obj.get("error") or obj
    msg = err.get("message") if isinstance(err, dict) else None
    problem = Problem(
        kind="error_event", message=f"the body is a JSON error: {msg or str(err)[:200]}", offset=0
    )
    return StreamOutcome(streamed=False, error=err, problems=[problem])


def note_transport(outcome: StreamOutcome, exchange: Exchange, body_bytes: int) -> None:
    """Add a ``transport`` problem (at the body's end) when the exchange did not end complete."""
    if exchange.outcome is ExchangeOutcome.COMPLETE:
        return
    detail = f": {exchange.error}" if exchange.error else ""
    outcome.problems.append(
        Problem(
            kind="transport",
            message=f"the recorded exchange ended with {exchange.outcome.value}{detail}",
            offset=body_bytes,
            t_ns=exchange.end_ns or None,
        )
    )


def read_times(reads: list[Read] | None) -> ReadTimes | None:
    """Index the reads by end offset, for `time_at`."""
    if not reads:
        return None
    ends: list[int] = []
    pos = 0
    for r in reads:
        pos += len(r.data)
        ends.append(pos)
    return ends, [r.t_ns for r in reads]


def stamp_times(outcome: StreamOutcome, body: bytes, reads: list[Read] | None, end: int) -> None:
    """A fast path's timing: the first event ends at the first blank line, the last at ``end``."""
    times = read_times(reads)
    if times is not None:
        outcome.t_first_ns = time_at(times, body.find(b"\n\n") + 2)
        outcome.t_last_ns = time_at(times, end)


def time_at(times: ReadTimes | None, offset: int) -> int | None:
    """Arrival time of the read holding byte ``offset - 1`` (the end of an event)."""
    if times is None:
        return None
    i = bisect.bisect_left(times[0], offset)
    return times[1][min(i, len(times[1]) - 1)]


def json_bytes(value: Any) -> bytes:
    """JSON of a result's plain form; lone surrogates (from ``\\ud800`` escapes) become U+FFFD.

    Streams carry such escapes (E25); UTF-8 cannot, so they are replaced rather than raise.
    """
    try:
        return msgspec.json.encode(value)
    except UnicodeEncodeError:
        return msgspec.json.encode(_without_surrogates(value))


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value
