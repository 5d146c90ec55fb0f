"""Whole bodies: `assemble` (fast path, SSE path, non-stream JSON) and `stream_finished`.

Speed: a body of the plain shape (``event: <name>\\ndata: {json}\\n\\n`` per event, or
data lines only) has its payloads spliced into one JSON array with C-level byte
operations and decoded in one typed msgspec call, then folded in one loop. Anything
unusual (CR, comments, other fields, unknown keys or types, an ``error`` event, a cut
tail, any problem while folding) goes through the SSE parser event by event instead,
which gives exact offsets and times.
"""

from __future__ import annotations

import io
from itertools import repeat
from typing import Any

import msgspec

from streamtape.core.exchange import Read
from streamtape.formats.anthropic_messages.assembler import MessagesAssembler
from streamtape.formats.anthropic_messages.results import Message
from streamtape.formats.anthropic_messages.wire import EVENT_TYPES, EVENTS_DECODER
from streamtape.formats.base import (
    Source,
    assemble_with,
    error_body_outcome,
    event_time,
    sse_data_events,
    stamp_times,
)

__all__ = ["assemble", "stream_finished"]


def assemble(source: Source) -> Message:
    """Assemble a whole Messages response: SSE body bytes, an iterable of reads, or an Exchange.

    A body that is one JSON object (a non-stream reply, or an error) is read as such.
    The result's ``outcome`` says whether and how the stream ended.
    """
    return assemble_with(source, whole=_non_stream, fast=_fast, slow=_slow)


def _non_stream(body: bytes) -> Message | None:
    """A body that is one JSON object: a non-stream message, or an error body."""
    try:
        obj: Any = msgspec.json.decode(body.strip().removeprefix(b"\xef\xbb\xbf"))
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("type") in _STREAM_TYPES:
        return None  # one bare event (JSON lines): the SSE path says what it is
    if obj.get("type") == "message" or ("content" in obj and not obj.get("error")):
        asm = MessagesAssembler()
        asm.start_whole(obj)
        return asm.finish()
    return Message(outcome=error_body_outcome(obj))


_STREAM_TYPES = EVENT_TYPES - {"error"}
_PLAIN_NAMES = frozenset(f"event: {name}\n".encode() for name in EVENT_TYPES if name != "error")
"""The ``event:`` lines the fast path takes (an ``error`` event goes the SSE way)."""


def _spliced(body: bytes) -> bytes | None:
    """The data payloads of a body of the plain shape as one JSON array, or None.

    One event is ``event: <known type>`` (optional), ``data: <payload>``, a blank line,
    all LF. ``readlines`` finds the line ends with memchr; each payload keeps its "\n"
    (JSON whitespace). Every line is checked, by set and by byte count, not one by one.
    """
    if b"\r" in body or not body.endswith(b"\n\n"):
        return None
    lines = io.BytesIO(body).readlines()
    named = body.startswith(b"event: ")
    step = 3 if named else 2
    n = len(lines) // step
    if not n or len(lines) != n * step or not body.startswith(b"event: " if named else b"data: "):
        return None
    names = lines[0::step] if named else []
    if named and not _PLAIN_NAMES.issuperset(names):
        return None
    datas = lines[step - 2 :: step]
    if lines[step - 1 :: step].count(b"\n") != n:
        return None
    payloads = list(map(bytes.removeprefix, datas, repeat(b"data: ")))
    payloads[0] = b"[" + payloads[0]
    payloads[-1] += b"]"
    array = b",".join(payloads)
    # A line that is not ``data: ...`` keeps its bytes, which this count sees.
    if len(array) != len(body) - len(b"".join(names)) - n - 6 * n + n + 1:
        return None
    return array


def _fast(body: bytes, reads: list[Read] | None) -> Message | None:
    """The plain shape in a few C-level passes and one typed decode; None otherwise."""
    array = _spliced(body)
    if array is None:
        return None
    try:
        events = EVENTS_DECODER.decode(array)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    asm = MessagesAssembler()
    asm._fold(events, 0)
    out = asm.outcome
    if out.problems:
        return None  # the SSE path says exactly where
    out.events = len(events)
    stamp_times(out, body, reads, len(body))
    return asm.finish()


def _slow(body: bytes, reads: list[Read] | None) -> Message:
    """Event by event through the SSE parser: exact offsets, timing, every fault."""
    asm = MessagesAssembler()
    for index, ev in enumerate(sse_data_events(body, reads, asm.outcome.problems.append)):
        where = {"event_index": index, "offset": ev.start, "t_ns": event_time(ev)}
        asm.feed(ev.data, event=ev.event, complete=ev.complete, **where)
    return asm.finish()


def stream_finished(tail: bytes) -> bool:
    """Whether the last bytes of a body show that ``message_stop`` arrived.

    The recorder asks this when the client closed the body: a client that stops reading
    after ``message_stop`` got the whole message. ``tail`` may start mid-event. The last
    data line decides, unless it is a ping or a gateway's ``[DONE]``; its payload must be
    whole JSON, and without a ``type`` the ``event:`` line before it names the event.
    """
    lines = [line.strip(b"\r") for line in tail.split(b"\n")]
    for pos in range(len(lines) - 1, -1, -1):
        line = lines[pos]
        if not line.startswith(b"data:"):
            continue  # blank, a comment, event:, id:, or the cut start of a line
        payload = line[5:].strip()
        if payload == b"[DONE]":
            continue
        try:
            obj: Any = msgspec.json.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            return False
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind is None and pos and lines[pos - 1].startswith(b"event:"):
            kind = lines[pos - 1][6:].strip().decode("utf-8", "replace")
        if kind != "ping":
            return bool(kind == "message_stop")
    return False
