"""The line and field half of the SSE parser: WHATWG's line interpretation, state and events.

`LineMachine` takes lines with their stream offsets and arrival times and turns them
into `SSEEvent` values: ``data`` lines joined, ``event``, sticky ``id``, digits-only
``retry``, comments counted, events without data not dispatched. It also splits
arbitrary bytes into lines (CR, LF and CRLF, a line cut across reads, a CR at the end
of a read). The byte-level fast paths in ``core.sse`` bypass it for the common shapes
and hand it everything else, so there is one behaviour.
"""

from __future__ import annotations

import msgspec

from streamtape.errors import SSEError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "LineMachine", "SSEEvent"]

DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024
"""Larger than any real completion chunk; small enough that garbage cannot eat memory."""


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event, with where and when it arrived.

    ``data`` stays bytes so a JSON decoder can take it without re-encoding.
    """

    data: bytes
    """The data buffer: ``data`` lines joined with LF, the trailing LF stripped."""
    event: str = "message"
    """The event type (``message`` unless an ``event`` field set another)."""
    id: str | None = None
    """The last event id in force at dispatch (sticky); None when none is set or it is empty."""
    retry: int | None = None
    """The reconnection time this event's ``retry`` field set, if any."""
    start: int = 0
    """Stream offset of the event's first byte (see the module docstring)."""
    end: int = 0
    """Stream offset just past the event's last byte (its dispatching blank line)."""
    t_start_ns: int | None = None
    """Arrival time of the read holding ``start``, when reads came with times."""
    t_end_ns: int | None = None
    """Arrival time of the read holding the dispatching blank line (or the stream's last byte)."""
    complete: bool = True
    """False only for the unfinished last event that ``finish()`` reports."""

    @property
    def text(self) -> str:
        """``data`` decoded as UTF-8, invalid bytes replaced by U+FFFD (as WHATWG decodes)."""
        return self.data.decode("utf-8", "replace")


class LineMachine:
    """Line state: the event being built, the sticky id, the retry value, counters."""

    __slots__ = (
        "_comments",
        "_data",
        "_etype",
        "_ev_retry",
        "_ev_start",
        "_ev_t",
        "_last_id",
        "_partial",
        "_skip_lf",
        "max_event_bytes",
        "retry",
    )

    def __init__(self, max_event_bytes: int) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive, not {max_event_bytes}")
        self.max_event_bytes = max_event_bytes
        self.retry: int | None = None
        """The reconnection time last set by a valid ``retry`` field."""
        self._comments = 0
        self._last_id: str | None = None
        # The previous read ended with CR: one LF at the start of the next one is its tail.
        self._skip_lf = False
        self._partial = bytearray()
        self._ev_start: int | None = None
        self._ev_t: int | None = None
        self._data: list[bytes] = []
        self._etype = b""
        self._ev_retry: int | None = None

    def _too_big(self, start: int) -> None:
        raise SSEError(
            f"SSE event starting at byte {start} is longer than max_event_bytes "
            f"({self.max_event_bytes}): no blank line ends it by byte "
            f"{start + self.max_event_bytes}; the body is probably not an event stream, "
            f"or pass a larger max_event_bytes if events really are this large"
        )

    def _emit_block(
        self, p: bytes, o: int, t0: int | None, t1: int | None, out: list[SSEEvent]
    ) -> None:
        """Run a complete LF-only block (the bytes before a ``\\n\\n``) through the machine."""
        for line in p.split(b"\n"):
            self._line(line, o, t0, out)
            o += len(line) + 1
        self._line(b"", o, t1, out)

    def _slow(self, data: bytes, off: int, t: int | None, out: list[SSEEvent]) -> None:
        """The general line splitter: CR, LF and CRLF, lines split across reads."""
        pos = self._continue_line(data, t, out) if self._partial else 0
        if pos < 0 or pos == len(data):
            return
        rest = data[pos:] if pos else data
        o = off + pos
        pieces = rest.splitlines(True)  # bytes: splits at CR, LF and CRLF only
        last = pieces[-1]
        unterminated = last[-1] != 10 and last[-1] != 13
        if unterminated:
            pieces.pop()
        line_ = self._line
        for piece in pieces:
            k = len(piece)
            if piece[-1] == 13 or (k == 1 or piece[-2] != 13):
                line_(piece[:-1], o, t, out)
            else:
                line_(piece[:-2], o, t, out)
            o += k
        if unterminated:
            if self._ev_start is None:
                self._ev_start = o
                self._ev_t = t
            self._partial += last
        elif rest[-1] == 13:
            self._skip_lf = True

    def _continue_line(self, data: bytes, t: int | None, out: list[SSEEvent]) -> int:
        """Finish the line a previous read left open; where the rest starts (-1: all used).

        Only this read is scanned, so a long line in tiny reads stays linear.
        """
        n = len(data)
        partial = self._partial
        i = data.find(b"\n")
        j = data.find(b"\r", 0, i if i >= 0 else n)
        if j >= 0:
            i = j
        if i < 0:
            partial += data
            return -1
        partial += data[:i]
        line = bytes(partial)
        partial.clear()
        self._line(line, -1, t, out)  # not the block's first line: _ev_start is set
        if data[i] != 13:
            return i + 1
        if i + 1 == n:
            self._skip_lf = True
            return -1
        return i + 2 if data[i + 1] == 10 else i + 1

    def _line(self, line: bytes, o: int, t: int | None, out: list[SSEEvent]) -> None:
        """Interpret one line (terminator removed) starting at stream offset ``o``."""
        if not line:
            self._dispatch(o, t, out)
            return
        if self._ev_start is None:
            self._ev_start = o
            self._ev_t = t
        c = line.find(b":")
        if c == 0:
            self._comments += 1
            return
        if c < 0:
            name = line
            value = b""
        else:
            name = line[:c]
            value = line[c + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._etype = value
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace") or None
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only
            self._ev_retry = self.retry = int(value)

    def _dispatch(self, o: int, t: int | None, out: list[SSEEvent]) -> None:
        """A blank line at offset ``o``: dispatch the pending event (if it has data)."""
        start = self._ev_start
        if start is None:
            return
        if o - start > self.max_event_bytes:
            self._too_big(start)
        if self._data:
            out.append(self._pending_event(o + 1, t, complete=True))
        self._reset_event()

    def _pending_event(self, end: int, t_end: int | None, *, complete: bool) -> SSEEvent:
        etype = self._etype
        return SSEEvent(
            b"\n".join(self._data),
            etype.decode("utf-8", "replace") if etype else "message",
            self._last_id,
            self._ev_retry,
            self._ev_start or 0,
            end,
            self._ev_t,
            t_end,
            complete,
        )

    def _reset_event(self) -> None:
        self._data = []
        self._ev_start = None
        self._etype = b""
        self._ev_retry = None
