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
from itertools import islice
from typing import NamedTuple

from streamtape.core.exchange import Read
from streamtape.core.sse_lines import DEFAULT_MAX_EVENT_BYTES, LineMachine, SSEEvent
from streamtape.errors import SSEError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEEvent", "SSEParser", "parse_sse"]

_BOM = b"\xef\xbb\xbf"


class _Ending(NamedTuple):
    """How a fast path's ``data: X`` events end: LF LF, or CR LF CR LF."""

    blank: bytes
    """The bytes that end an event (the line's end and the blank line)."""
    counted: int
    """Framing bytes of an event before the byte that dispatches it (``data: `` + ...)."""
    stride: int
    """Framing bytes of an event in all (``data: `` and ``blank``)."""


_LF = _Ending(b"\n\n", 7, 8)
_CRLF = _Ending(b"\r\n\r\n", 8, 10)


def _split_data_events(buf: bytes, j: int, ending: _Ending) -> list[bytes]:
    """The payloads of ``data: X`` events filling ``buf[:j]`` (``buf`` opens with ``data: ``).

    One C-level split yields them without a copy per event; the caller proves the
    shape by counting line ends.
    """
    blank = ending.blank
    if j == len(buf):  # no tail: split in place rather than copy the read first
        segs = buf.split(blank + b"data: ")
        segs[0] = segs[0][6:]
        segs[-1] = segs[-1][: -len(blank)]
        return segs
    return buf[6 : j - len(blank)].split(blank + b"data: ")


class SSEParser(LineMachine):
    """Incremental parser: ``feed()`` each read as it arrives, ``finish()`` at end of input.

    It does no I/O and keeps no clock; the caller passes each read's arrival time. The
    byte-level fast paths live here; line and field interpretation in `LineMachine`.
    """

    __slots__ = (
        "_block",
        "_block_off",
        "_block_t",
        "_finished",
        "_head",
        "_head_t",
        "_idle",
        "_last_t",
        "bytes_fed",
    )

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self.bytes_fed = 0
        """Bytes fed so far (BOM included)."""
        # The first bytes while they could still be the start of a BOM.
        self._head: bytearray | None = bytearray()
        self._head_t: int | None = None
        # True when nothing is pending, so a read holding exactly one simple event
        # can be answered without entering the general code.
        self._idle = False
        # Fast path: the raw bytes of an unfinished block (no CR, no blank line, first
        # byte not LF), with the offset and arrival time of its first byte.
        self._block: bytes | bytearray = b""
        self._block_off = 0
        self._block_t: int | None = None
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
            out.append(self._pending_event(self.bytes_fed, self._last_t, complete=False))
        self._reset_event()
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
            segs = _split_data_events(rest, j, _LF)
            if rest.count(b"\n", 0, j) != 2 * len(segs):
                segs = None
        if segs is not None:
            o = self._emit_data_events(segs, o, t0, t, _LF, j, out)
            tail = rest[j:]
        else:
            tail, o = self._fast_blocks(rest, o, t0, t, out)
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
        segs = _split_data_events(data, j, _CRLF)
        self._emit_data_events(segs, off, t, t, _CRLF, j, out)
        return j

    def _emit_data_events(
        self,
        segs: list[bytes],
        o: int,
        t0: int | None,
        t: int | None,
        ending: _Ending,
        span: int,
        out: list[SSEEvent],
    ) -> int:
        """Emit the payloads a fast path split out, from offset ``o``; return the next offset.

        ``span`` is how many bytes the events fill (only a span past the cap is checked).

        The first event may have begun in an earlier read (``t0``); ``end`` stops just
        past the blank line's first byte, so a CRLF event does not count its last LF.
        """
        counted, stride = ending.counted, ending.stride
        if span > self.max_event_bytes:
            self._check_sizes(segs, o, counted=counted, stride=stride)
        last_id = self._last_id
        append = out.append
        head = counted + 1  # framing bytes up to ``end``
        gap = stride - head  # framing bytes after it (the LF of a CRLF blank line)
        rest: Iterable[bytes] = segs
        if t0 != t:
            seg = segs[0]
            end = o + len(seg) + head
            append(SSEEvent(seg, "message", last_id, None, o, end, t0, t))
            o = end + gap
            rest = islice(segs, 1, None)
        for seg in rest:
            end = o + len(seg) + head
            append(SSEEvent(seg, "message", last_id, None, o, end, t, t))
            o = end + gap
        return o

    def _fast_blocks(
        self, rest: bytes, o: int, t0: int | None, t: int | None, out: list[SSEEvent]
    ) -> tuple[bytes, int]:
        """LF blocks of any shape: simple ``data:`` ones sliced, others through the machine.

        Returns the unfinished tail and its offset.
        """
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
        return tail, o

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
