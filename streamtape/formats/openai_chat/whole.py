"""Whole response bodies to completions: the fast path, the event-by-event path, non-streams.

Speed: a whole body takes a fast path when it is the plain ``data: {...}\\n\\n`` shape.
The payloads are spliced into one JSON array with C-level byte operations and decoded
in a single typed msgspec call; strings are joined once at the end. Anything unusual
(comments, CRLF, other fields, unknown keys, invalid JSON) falls back to the SSE
parser and per-chunk decoding, which give exact offsets.
"""

from __future__ import annotations

import io
import json
from itertools import repeat
from typing import Any

import msgspec

from streamtape.core.exchange import Read
from streamtape.core.sse import DEFAULT_MAX_EVENT_BYTES
from streamtape.formats.base import (
    Problem,
    Source,
    StreamOutcome,
    assemble_with,
    error_body_outcome,
    event_time,
    sse_data_events,
    stamp_times,
)
from streamtape.formats.openai_chat.assembler import Assembler, Completion
from streamtape.formats.openai_chat.results import ChatCompletion, completion_from_dict
from streamtape.formats.openai_chat.wire import CHUNK_DECODER, CHUNKS_DECODER, TEXT_CHUNKS_DECODER

__all__ = ["assemble", "stream_finished"]


def stream_finished(body: bytes) -> bool:
    """Whether a chat/text completion body ends with its ``data: [DONE]`` event."""
    tail = body[-64:].rstrip(b"\r\n")
    return tail.endswith((b"data: [DONE]", b"data:[DONE]"))


def assemble(source: Source) -> Completion:
    """Assemble a whole response: SSE body bytes, an iterable of reads, or an Exchange.

    A body that is one JSON object (a non-stream reply, or an error body) is decoded as
    such. The result's ``outcome`` says whether the stream ended cleanly.
    """
    return assemble_with(source, whole=_non_stream, fast=_fast, slow=_slow)


def _non_stream(body: bytes) -> Completion | None:
    """A body that is one JSON value: a non-stream completion or an error (E34)."""
    try:
        obj: Any = msgspec.json.decode(body.lstrip().removeprefix(b"\xef\xbb\xbf"))
    except RecursionError:
        return _invalid_body("the body nests JSON too deeply to decode")
    except msgspec.DecodeError:
        try:
            obj = json.loads(body.decode("utf-8-sig"))
        except RecursionError:
            return _invalid_body("the body nests JSON too deeply to decode")
        except ValueError:
            return None  # e.g. bare JSON lines (E4): let the SSE path report it
    if not isinstance(obj, dict):
        return None
    if obj.get("error") or "choices" not in obj:
        return ChatCompletion(outcome=error_body_outcome(obj))
    try:
        return completion_from_dict(obj)
    except msgspec.ValidationError as exc:
        return _invalid_body(f"the body is not a completion: {exc}", kind="invalid_chunk")


def _invalid_body(message: str, kind: str = "invalid_json") -> ChatCompletion:
    """A non-stream body that cannot be read: an empty result saying why."""
    result = ChatCompletion(outcome=StreamOutcome(streamed=False))
    result.outcome.problems.append(Problem(kind=kind, message=message, offset=0))
    return result


_WINDOW = 1 << 20
"""Bytes of body per decode window (fast path) and per parser feed (event-by-event path)."""
_MAX_EVENT = DEFAULT_MAX_EVENT_BYTES
_DONE_SEP = b"\n\ndata: [DONE]"
_SEP = b"\n\ndata: "


def _fast(body: bytes, reads: list[Read] | None) -> Completion | None:
    """The common shape, ``data: {json}\\n\\n`` events then ``data: [DONE]``, in a few
    C-level passes and one typed decode per window. None when the body is anything else.

    Windows of about `_WINDOW` bytes keep memory linear in the result rather than in
    the number of events (a million tiny events never live as a million decoded chunks).
    """
    if not body.startswith(b"data: {"):
        return None
    k = body.rfind(_DONE_SEP)
    if k < 0 or body[k + 2 :].rstrip(b"\n") != b"data: [DONE]" or b"\r" in body:
        return None
    asm = Assembler()
    window = _Window(io.BytesIO(body), k + 2)
    n = 0
    text: bool | None = None
    while True:
        got = window.next()
        if got is None:
            return None
        head, array, count = got
        if not count:
            break
        if text is None:
            text = _is_text_stream(head)
            first = CHUNK_DECODER.decode(head) if text else None
        else:
            first = None
        try:
            if text:
                asm.feed_decoded(TEXT_CHUNKS_DECODER.decode(array), text=True, first=first)
            else:
                asm.feed_decoded(CHUNKS_DECODER.decode(array), first_index=n)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None  # something the typed path does not take: start over, event by event
        n += count
    out = asm.outcome
    out.done = True
    out.events = n + 1
    if out.problems:
        _place_problems(out, body, k)
    if n:
        stamp_times(out, body, reads, k + 2)
    return asm.finish()


class _Window:
    """The events part of a fast-path body, a window of lines at a time.

    ``readlines`` finds line ends with memchr, much faster than splitting on
    ``"\\n\\ndata: "``. Each payload keeps its ``"\\n"`` (JSON whitespace), so data
    lines need no second check for other lines.
    """

    def __init__(self, src: io.BytesIO, limit: int) -> None:
        self.src = src
        self.limit = limit  # the end of the last event's blank line

    def next(self) -> tuple[bytes, bytes, int] | None:
        """(first payload, the window's payloads as a JSON array, how many); None: not the shape.

        An empty window (count 0) means the events are over.
        """
        src = self.src
        start = src.tell()
        if start >= self.limit:
            return b"", b"", 0
        lines = src.readlines(_WINDOW)
        if len(lines) % 2:
            lines.append(src.readline())  # keep a data line with its blank line
        over = src.tell() - self.limit
        while over > 0 and lines:
            over -= len(lines.pop())  # the lines of ``data: [DONE]``
        if over:
            return None
        datas = lines[0::2]
        blanks = lines[1::2]
        if len(datas) != len(blanks) or blanks.count(b"\n") != len(blanks) or not datas:
            return None  # an event with another line (event:, id:, a comment, more data)
        count = len(datas)
        data_bytes = min(src.tell(), self.limit) - start - count
        if data_bytes > _MAX_EVENT and max(map(len, datas)) >= _MAX_EVENT:
            return None  # the event size cap: the SSE path reports it
        payloads = list(map(bytes.removeprefix, datas, repeat(b"data: ")))
        head = payloads[0]
        payloads[0] = b"[" + head
        payloads[-1] += b"]"
        array = b",".join(payloads)
        # Less 6 bytes per removed prefix, plus brackets and commas: a line that is not
        # ``data: ...`` keeps its bytes and breaks the count.
        if len(array) != data_bytes - 5 * count + 1:
            return None
        return head, array, count


def _is_text_stream(head: bytes) -> bool:
    """Whether the first payload starts a ``text_completion`` stream the text types can take."""
    if b"text_completion" not in head:
        return False
    try:
        first = CHUNK_DECODER.decode(head)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    return first.object == "text_completion" and not first.error


def _place_problems(out: StreamOutcome, body: bytes, k: int) -> None:
    """Give the fast path's problems their byte offsets (computed only when there are any)."""
    starts = [0]
    pos = 0
    while True:
        pos = body.find(_SEP, pos, k + 2)
        if pos < 0:
            break
        starts.append(pos + 2)
        pos += 2
    out.problems = [
        msgspec.structs.replace(p, offset=starts[p.event_index]) if p.event_index is not None else p
        for p in out.problems
    ]


def _slow(body: bytes, reads: list[Read] | None) -> Completion:
    """Event by event through the SSE parser: exact offsets, timing, every fault."""
    asm = Assembler()
    for index, ev in enumerate(sse_data_events(body, reads, asm.outcome.problems.append)):
        asm.feed_event(
            ev.data,
            index,
            event=ev.event,
            offset=ev.start,
            t_ns=event_time(ev),
            complete=ev.complete,
        )
    return asm.finish()
