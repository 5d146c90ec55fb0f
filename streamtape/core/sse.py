"""Sans-IO, byte-level server-sent-event parser (WHATWG rules) that keeps offsets and timing.

Why our own: every common Python decoder mis-frames some real inputs (a leading BOM,
mixed line endings, a CR at the end of a read held back until the next one, a trailing
event dropped at EOF), and none of them says where in the body, or when, an event
arrived. Streamtape derives meaning offline from recorded bytes, so the parser works on
bytes (never ``str.splitlines``, which breaks JSON at U+2028), takes reads as they came,
and stamps every event with its byte range and the arrival time of its first and last byte.

Fast paths and one general machine, one behaviour:

- LF line ends, no CR anywhere in the read: split the read on ``b"\\n\\n"`` and take
  single-line ``data: `` events by slicing; anything else in that read goes through the
  line state machine one block at a time, and an unfinished block is kept raw until the
  read that ends it, then parsed together with that read;
- CRLF line ends: when everything up to the read's last ``b"\\r\\n\\r\\n"`` is
  single-line ``data: `` events, they are taken by slicing the same way, and the line
  machine takes the rest of the read;
- the general line state machine, for CR and mixed streams and partial lines.

All paths scan each byte a bounded number of times, so one huge event fed in tiny reads
costs linear time, and an event that grows past ``max_event_bytes`` raises ``SSEError``.

Offsets are positions in the whole stream as fed (a leading BOM counts). An event spans
``[start, end)``: ``start`` is the first byte of the first non-blank line after the
previous blank line (comment lines in the same block are part of the event), ``end`` is
just past the first byte of the blank line that dispatched it. For a CRLF blank line the
LF is not counted, so ``end`` does not depend on whether the LF had arrived yet: a CR at
the end of a read dispatches at once. ``body[start:end]`` re-parses to the same event.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from streamtape.core.exchange import Read
from streamtape.errors import SSEError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEEvent", "SSEParser", "parse_sse"]

DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024
"""Larger than any real completion chunk; small enough that garbage cannot eat memory."""

_BOM = b"\xef\xbb\xbf"


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


class SSEParser:
    """Incremental parser: ``feed()`` each read as it arrives, ``finish()`` at end of input.

    It does no I/O and keeps no clock; the caller passes each read's arrival time.
    """

    __slots__ = (
        "_block",
        "_block_off",
        "_block_t",
        "_comments",
        "_data",
        "_etype",
        "_ev_retry",
        "_ev_start",
        "_ev_t",
        "_finished",
        "_head",
        "_head_t",
        "_idle",
        "_last_id",
        "_last_t",
        "_partial",
        "_skip_lf",
        "bytes_fed",
        "max_event_bytes",
        "retry",
    )

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive, not {max_event_bytes}")
        self.max_event_bytes = max_event_bytes
        self.bytes_fed = 0
        """Bytes fed so far (BOM included)."""
        self.retry: int | None = None
        """The reconnection time last set by a valid ``retry`` field."""
        self._comments = 0
        self._last_id: str | None = None
        # The first bytes while they could still be the start of a BOM.
        self._head: bytearray | None = bytearray()
        self._head_t: int | None = None
        # The previous read ended with CR: one LF at the start of the next one is its tail.
        self._skip_lf = False
        # True when nothing is pending, so a read holding exactly one simple event
        # can be answered without entering the general code.
        self._idle = False
        # Fast path: the raw bytes of an unfinished block (no CR, no blank line, first
        # byte not LF), with the offset and arrival time of its first byte.
        self._block: bytes | bytearray = b""
        self._block_off = 0
        self._block_t: int | None = None
        # Line state machine.
        self._partial = bytearray()
        self._ev_start: int | None = None
        self._ev_t: int | None = None
        self._data: list[bytes] = []
        self._etype = b""
        self._ev_retry: int | None = None
        self._last_t: int | None = None
        self._finished = False

    @property
    def comments(self) -> int:
        """Comment lines seen so far (keep-alives such as ``: ping``)."""
        pending = 0
        if self._block:
            pending = sum(1 for line in bytes(self._block).split(b"\n")[:-1] if line[:1] == b":")
        return self._comments + pending

    @property
    def last_event_id(self) -> str | None:
        """The last event id set by the stream (None if none, or cleared by a bare ``id``)."""
        return self._last_id

    def feed(self, data: bytes, t_ns: int | None = None) -> list[SSEEvent]:
        """Parse one read; return the events it completed, in order.

        ``t_ns`` is the read's arrival time (any monotonic unit; streamtape uses ns
        since the request was sent); events carry it in ``t_start_ns``/``t_end_ns``.
        """
        n = len(data)
        # One simple LF event per read, nothing pending: the shape of most real reads.
        if (
            self._idle
            and data[-2:] == b"\n\n"
            and data[:6] == b"data: "
            and data.find(b"\n", 6) == n - 2
            and b"\r" not in data
            and n <= self.max_event_bytes
            and type(data) is bytes
        ):
            off = self.bytes_fed
            self.bytes_fed = off + n
            self._last_t = t_ns
            return [SSEEvent(data[6:-2], "message", self._last_id, None, off, off + n, t_ns, t_ns)]
        # The same for CRLF streams; the final LF is consumed but not counted in ``end``.
        if (
            self._idle
            and data[-4:] == b"\r\n\r\n"
            and data[:6] == b"data: "
            and data.find(b"\r", 6) == n - 4
            and data.find(b"\n", 6) == n - 3
            and n <= self.max_event_bytes
            and type(data) is bytes
        ):
            off = self.bytes_fed
            self.bytes_fed = off + n
            self._last_t = t_ns
            end = off + n - 1
            return [SSEEvent(data[6:-4], "message", self._last_id, None, off, end, t_ns, t_ns)]
        return self._feed(data, t_ns)

    def finish(self) -> list[SSEEvent]:
        """End of input: return the unfinished last event (``complete=False``) if it had data.

        WHATWG discards such an event; streamtape reports it, flagged, because a cut
        stream's last chunk is exactly what a user debugging it needs to see.
        """
        if self._finished:
            return []
        out: list[SSEEvent] = []
        head = self._head
        if head is not None:
            self._head = None
            if head:
                self._body(bytes(head), 0, self._head_t, out)
        self._finished = True
        self._idle = False
        if self._block:
            self._unblock()
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._line(line, -1, None, out)
        if self._data and self._ev_start is not None:
            out.append(
                SSEEvent(
                    b"\n".join(self._data),
                    self._etype.decode("utf-8", "replace") if self._etype else "message",
                    self._last_id,
                    self._ev_retry,
                    self._ev_start,
                    self.bytes_fed,
                    self._ev_t,
                    self._last_t,
                    False,
                )
            )
        self._data = []
        self._ev_start = None
        self._etype = b""
        self._ev_retry = None
        return out

    # -- general path -------------------------------------------------------------

    def _feed(self, data: bytes, t: int | None) -> list[SSEEvent]:
        if self._finished:
            raise SSEError("SSEParser.feed() called after finish(); use a new parser per stream")
        if type(data) is not bytes:
            data = bytes(data)
        n = len(data)
        out: list[SSEEvent] = []
        if not n:
            return out
        off = self.bytes_fed
        self.bytes_fed = off + n
        self._last_t = t
        head = self._head
        if head is None:
            self._body(data, off, t, out)
        elif not head and n >= 3:
            # The first read holds the whole BOM candidate: no need to buffer it.
            self._head = None
            if data[:3] == _BOM:
                self._body(data[3:], 3, t, out)
            else:
                self._body(data, 0, t, out)
        else:
            if not head:
                self._head_t = t
            head += data
            if len(head) < 3 and _BOM.startswith(head):
                return out
            self._head = None
            if head.startswith(_BOM):
                # Whatever follows the BOM came in this read.
                self._body(bytes(head[3:]), 3, t, out)
            else:
                if off:
                    self._body(bytes(head[:off]), 0, self._head_t, out)
                self._body(data, off, t, out)
        self._idle = not self._block and self._ev_start is None and not self._skip_lf
        return out

    def _body(self, data: bytes, off: int, t: int | None, out: list[SSEEvent]) -> None:
        """Parse stream bytes starting at stream offset ``off`` (BOM already handled)."""
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
                off += 1
        if not data:
            return
        if self._ev_start is None and b"\r" not in data:
            self._fast(data, off, t, out)
        else:
            if self._block:
                self._unblock()
            elif self._ev_start is None and data[:6] == b"data: ":
                k = self._fast_crlf(data, off, t, out)
                if k:
                    data = data[k:]
                    off += k
            if data:
                self._slow(data, off, t, out)
        start = self._block_off if self._block else self._ev_start
        if start is not None and off + len(data) - start > self.max_event_bytes:
            self._too_big(start)

    def _too_big(self, start: int) -> None:
        raise SSEError(
            f"SSE event starting at byte {start} is longer than max_event_bytes "
            f"({self.max_event_bytes}): no blank line ends it by byte "
            f"{start + self.max_event_bytes}; the body is probably not an event stream, "
            f"or pass a larger max_event_bytes if events really are this large"
        )

    def _check_sizes(self, segs: list[bytes], start: int, *, counted: int, stride: int) -> None:
        """Apply the size cap to events split out by a fast path.

        Each event is ``stride`` framing bytes plus its data; ``counted`` of them lie
        before the byte that ends it, which is what the cap measures.
        """
        for seg in segs:
            if len(seg) + counted > self.max_event_bytes:
                self._too_big(start)
            start += len(seg) + stride

    def _fast(self, data: bytes, off: int, t: int | None, out: list[SSEEvent]) -> None:
        """LF-only bytes with the line machine clean: split on blank lines directly."""
        block = self._block
        t0 = t
        if block:
            if data.find(b"\n\n") < 0 and not (block[-1] == 10 and data[0] == 10):
                # Still unfinished: append, so a long block in tiny reads stays linear.
                if type(block) is bytes:
                    block = self._block = bytearray(block)
                block += data
                return
            # The block ends in this read: parse it and the read as one buffer (the
            # block is raw bytes, so that is exactly what a clean parser would see).
            rest = block + data if type(block) is bytes else b"".join((block, data))
            o = self._block_off
            t0 = self._block_t  # the first part began in the block's read
            self._block = b""
        else:
            rest = data
            o = off
        # The usual shape: nothing but `data: X\n\n` events up to the last blank line.
        # One split yields the payloads without a copy per event, and one count proves
        # the shape: every LF belongs to a separator or to the final blank line.
        j = rest.rfind(b"\n\n") + 2
        segs = None
        if j > 1 and rest[:6] == b"data: ":
            if j == len(rest):  # no tail: split in place rather than copy the read first
                segs = rest.split(b"\n\ndata: ")
                segs[0] = segs[0][6:]
                segs[-1] = segs[-1][:-2]
            else:
                segs = rest[6 : j - 2].split(b"\n\ndata: ")
            if rest.count(b"\n", 0, j) != 2 * len(segs):
                segs = None
        if segs is not None:
            if j > self.max_event_bytes:
                self._check_sizes(segs, o, counted=7, stride=8)
            last_id = self._last_id
            append = out.append
            if t0 != t:
                seg = segs[0]
                e = o + len(seg) + 8
                append(SSEEvent(seg, "message", last_id, None, o, e, t0, t))
                o = e
                del segs[0]
            for seg in segs:
                e = o + len(seg) + 8
                append(SSEEvent(seg, "message", last_id, None, o, e, t, t))
                o = e
            tail = rest[j:]
        else:
            parts = rest.split(b"\n\n")
            tail = parts.pop()
            if len(rest) > self.max_event_bytes:
                # Only a read this large can hold a complete block this large.
                q = o
                for p in parts:
                    stripped = p.lstrip(b"\n")
                    if len(stripped) >= self.max_event_bytes:
                        self._too_big(q + len(p) - len(stripped))
                    q += len(p) + 2
            last_id = self._last_id
            append = out.append
            for p in parts:
                if p[:6] == b"data: " and b"\n" not in p:
                    e = o + len(p) + 2
                    append(SSEEvent(p[6:], "message", last_id, None, o, e, t0, t))
                    o = e
                else:
                    self._emit_block(p, o, t0, t, out)
                    last_id = self._last_id
                    o += len(p) + 2
                t0 = t
        if tail:
            if tail[0] == 10:
                stripped = tail.lstrip(b"\n")
                o += len(tail) - len(stripped)
                tail = stripped
            if tail:
                self._block = tail
                self._block_off = o
                self._block_t = t

    def _fast_crlf(self, data: bytes, off: int, t: int | None, out: list[SSEEvent]) -> int:
        """CRLF-only ``data: X`` events up to the last blank line, the machine clean.

        Returns the bytes consumed: 0 when that prefix is not of this shape, so the line
        machine takes the whole read; otherwise it takes what follows.
        """
        j = data.rfind(b"\r\n\r\n") + 4
        if j < 4:
            return 0
        i = data.find(b"\r", 6)
        if data[i : i + 10] != b"\r\n\r\ndata: " and i + 4 != j:
            return 0  # the first event already is not of that shape: cheap no
        # Each separator and the final blank line hold two CRs and two LFs: equal
        # counts mean there are no others, so every event is one `data: ` line.
        k = data.count(b"\r\n\r\ndata: ", 0, j) * 2 + 2
        if data.count(b"\n", 0, j) != k or data.count(b"\r", 0, j) != k:
            return 0
        if j == len(data):  # no tail: split in place rather than copy the read first
            segs = data.split(b"\r\n\r\ndata: ")
            segs[0] = segs[0][6:]
            segs[-1] = segs[-1][:-4]
        else:
            segs = data[6 : j - 4].split(b"\r\n\r\ndata: ")
        if j > self.max_event_bytes:
            self._check_sizes(segs, off, counted=8, stride=10)
        last_id = self._last_id
        append = out.append
        o = off
        for seg in segs:
            e = o + len(seg) + 9  # just past the blank line's CR
            append(SSEEvent(seg, "message", last_id, None, o, e, t, t))
            o = e + 1
        return j

    def _emit_block(
        self, p: bytes, o: int, t0: int | None, t1: int | None, out: list[SSEEvent]
    ) -> None:
        """Run a complete LF-only block (the bytes before a ``\\n\\n``) through the machine."""
        for line in p.split(b"\n"):
            self._line(line, o, t0, out)
            o += len(line) + 1
        self._line(b"", o, t1, out)

    def _unblock(self) -> None:
        """Hand the fast path's raw unfinished block to the line machine."""
        block = bytes(self._block)
        self._block = b""
        o = self._block_off
        t0 = self._block_t
        lines = block.split(b"\n")
        last = lines.pop()
        unused: list[SSEEvent] = []  # a pending block holds no blank line, so nothing fires
        for line in lines:
            self._line(line, o, t0, unused)
            o += len(line) + 1
        if last:
            if self._ev_start is None:
                self._ev_start = o
                self._ev_t = t0
            self._partial += last

    def _slow(self, data: bytes, off: int, t: int | None, out: list[SSEEvent]) -> None:
        """The general line splitter: CR, LF and CRLF, lines split across reads."""
        n = len(data)
        pos = 0
        partial = self._partial
        if partial:
            # Only this read is scanned, so a long line in tiny reads stays linear.
            i = data.find(b"\n")
            j = data.find(b"\r", 0, i if i >= 0 else n)
            if j >= 0:
                i = j
            if i < 0:
                partial += data
                return
            partial += data[:i]
            line = bytes(partial)
            partial.clear()
            self._line(line, -1, t, out)  # not the block's first line: _ev_start is set
            if data[i] == 13:
                if i + 1 == n:
                    self._skip_lf = True
                    return
                pos = i + 2 if data[i + 1] == 10 else i + 1
            else:
                pos = i + 1
            if pos == n:
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
            partial += last
        elif rest[-1] == 13:
            self._skip_lf = True

    def _line(self, line: bytes, o: int, t: int | None, out: list[SSEEvent]) -> None:
        """Interpret one line (terminator removed) starting at stream offset ``o``."""
        if not line:
            start = self._ev_start
            if start is None:
                return
            if o - start > self.max_event_bytes:
                self._too_big(start)
            if self._data:
                etype = self._etype
                out.append(
                    SSEEvent(
                        b"\n".join(self._data),
                        etype.decode("utf-8", "replace") if etype else "message",
                        self._last_id,
                        self._ev_retry,
                        start,
                        o + 1,
                        self._ev_t,
                        t,
                    )
                )
                self._data = []
            self._ev_start = None
            self._etype = b""
            self._ev_retry = None
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


def parse_sse(source: bytes | bytearray | Iterable[bytes] | Iterable[Read]) -> list[SSEEvent]:
    """Parse a whole input: one buffer, or reads (``Read`` objects carry their times).

    The unfinished last event, if any, is included with ``complete=False``.
    """
    parser = SSEParser()
    if isinstance(source, (bytes, bytearray, memoryview)):
        events = parser.feed(bytes(source))
    else:
        events = []
        for item in source:
            if isinstance(item, Read):
                events += parser.feed(item.data, item.t_ns)
            else:
                events += parser.feed(item)
    events += parser.finish()
    return events
