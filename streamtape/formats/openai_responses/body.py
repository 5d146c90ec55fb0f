"""Whole Responses API bodies: the fast path, the event-by-event path, non-stream bodies.

Fast path: a body of plain ``event: <name>\\ndata: {json}\\n\\n`` blocks (or data-only
blocks) is checked line by line with C-level byte operations, its payloads spliced
into one JSON array and decoded in a single typed msgspec call. Anything unusual
(CRLF, comments, ids, multi-line data, unknown keys, data without ``type``, invalid
JSON, an event that raises a problem) falls back to the SSE parser, which gives every
problem its event index, byte offset and arrival time.
"""

from __future__ import annotations

import io
import json
import re
from itertools import repeat
from typing import Any

import msgspec

from streamtape.core.exchange import Read
from streamtape.formats.base import (
    Source,
    StreamOutcome,
    assemble_with,
    error_body_outcome,
    event_time,
    fix_surrogates,
    sse_data_events,
    stamp_times,
)
from streamtape.formats.openai_responses.assembler import ResponsesAssembler
from streamtape.formats.openai_responses.results import Response, response_from
from streamtape.formats.openai_responses.wire import EVENTS_DECODER

__all__ = ["assemble", "stream_finished"]


def assemble(source: Source) -> Response:
    """Assemble a whole Responses API body: SSE bytes, an iterable of reads, or an Exchange.

    A body that is one JSON object (a non-stream reply, or an error body) is read as
    such. The result's ``outcome`` says whether the stream ended cleanly.
    """
    return assemble_with(source, whole=_non_stream, fast=_fast, slow=_slow)


def _non_stream(body: bytes) -> Response | None:
    """A body that is one JSON object: a non-stream ``response``, or an error."""
    text = body.lstrip().removeprefix(b"\xef\xbb\xbf")
    try:
        obj: Any = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        try:
            obj = fix_surrogates(json.loads(text.decode("utf-8", "replace")))
        except (ValueError, RecursionError):
            return None  # not one JSON value (or nested past reading): the SSE path reports it
    if not isinstance(obj, dict):
        return None
    if "output" not in obj and (obj.get("error") or "id" not in obj):
        return Response(outcome=error_body_outcome(obj))
    outcome = StreamOutcome(streamed=False, done=True)
    output = obj.get("output")
    items = [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
    if obj.get("status") == "failed":
        outcome.error = obj.get("error") or {"message": "the response failed"}
    return response_from(obj, items, outcome)


def _fast(body: bytes, reads: list[Read] | None) -> Response | None:
    """Plain ``event:``/``data:`` blocks in a few C-level passes and one typed decode.

    Returns None when the body is anything else, or when assembling it raised a
    problem (the event-by-event path then reports it with exact offsets).
    """
    if body.startswith(b"event: "):
        stride = 3
    elif body.startswith(b"data: {"):
        stride = 2
    else:
        return None
    if not body.endswith(b"\n\n") or b"\r" in body:
        return None
    lines = io.BytesIO(body).readlines()
    n, rest = divmod(len(lines), stride)
    if rest or not n or lines[stride - 1 :: stride].count(b"\n") != n:
        return None
    # Every LF in ``names`` ends a line, so the count proves each line's prefix.
    names = b"".join(lines[0::3]) if stride == 3 else b""
    if stride == 3 and (not names.startswith(b"event: ") or names.count(b"\nevent: ") != n - 1):
        return None
    payloads = list(map(bytes.removeprefix, lines[stride - 2 :: stride], repeat(b"data: ")))
    payloads[0] = b"[" + payloads[0]
    payloads[-1] += b"]"
    array = b",".join(payloads)
    # The lines partition the body; the array is the data lines less 6 bytes per
    # stripped prefix, plus brackets and commas: any data line without it shows here.
    if len(array) != len(body) - len(names) - 6 * n + 1:
        return None
    try:
        events = EVENTS_DECODER.decode(array)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    asm = ResponsesAssembler()
    asm.feed_many(events)
    out = asm.outcome
    if out.problems:
        return None
    out.events = n
    stamp_times(out, body, reads, len(body))
    return asm.finish()


def _slow(body: bytes, reads: list[Read] | None) -> Response:
    """Event by event through the SSE parser: exact offsets, timing, every fault."""
    asm = ResponsesAssembler()
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


_TERMINAL_RE = re.compile(
    rb"(?:^|\n)event:[ ]?response\.(?:completed|incomplete|failed)[ \t]*\n"
    rb'|"type"[ \t\r\n]*:[ \t\r\n]*"response\.(?:completed|incomplete|failed)"'
)


def stream_finished(tail: bytes) -> bool:
    """Whether a body ending in ``tail`` had received its terminal event whole.

    True when the last event (ignoring a gateway's trailing ``data: [DONE]``) is a
    ``response.completed``, ``response.incomplete`` or ``response.failed`` followed
    by its blank line, so a client that hung up then recorded a complete exchange.
    ``tail`` must reach back to the start of that event or at least to its
    ``"type"`` key (the key comes first in what the API sends).
    """
    text = tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not text.endswith(b"\n\n"):
        return False
    blocks = text.rstrip(b"\n").split(b"\n\n")
    last = blocks[-1]
    if last.strip() in (b"data: [DONE]", b"data:[DONE]") and len(blocks) > 1:
        last = blocks[-2]
    if not last.rstrip().endswith(b"}"):
        return False
    return _TERMINAL_RE.search(b"\n" + last) is not None
