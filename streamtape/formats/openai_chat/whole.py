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
from streamtape.core.sse import SSEParser
from streamtape.errors import SSEError
from streamtape.formats.base import (
    Problem,
    Source,
    StreamOutcome,
    body_and_reads,
    note_transport,
    read_times,
    time_at,
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
    body, reads, exchange = body_and_reads(source)
    result = _assemble_body(body, reads)
    if exchange is not None:
        note_transport(result.outcome, exchange)
    return result


def _assemble_body(body: bytes, reads: list[Read] | None) -> Completion:
    head = body[:64].lstrip(b" \t\r\n")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip(b" \t\r\n")
    if head.startswith((b"{", b"[")):
        whole = _non_stream(body)
        if whole is not None:
            return whole
    result = _fast(body, reads)
    if result is not None:
        return result
    return _slow(body, reads)


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
        result = ChatCompletion(outcome=StreamOutcome(streamed=False))
        err = obj.get("error") or obj
        result.outcome.error = err
        msg = err.get("message") if isinstance(err, dict) else None
        result.outcome.problems.append(
            Problem(
                kind="error_event",
                message=f"the body is a JSON error: {msg or str(err)[:200]}",
                offset=0,
            )
        )
        return result
    try:
        return completion_from_dict(obj)
    except msgspec.ValidationError as exc:
        return _invalid_body(f"the body is not a completion: {exc}", kind="invalid_chunk")


def _invalid_body(message: str, kind: str = "invalid_json") -> ChatCompletion:
    """A non-stream body that cannot be read: an empty result saying why."""
    result = ChatCompletion(outcome=StreamOutcome(streamed=False))
    result.outcome.problems.append(Problem(kind=kind, message=message, offset=0))
    return result


_DONE_SEP = b"\n\ndata: [DONE]"
_SEP = b"\n\ndata: "


def _fast(body: bytes, reads: list[Read] | None) -> Completion | None:
    """The common shape, ``data: {json}\\n\\n`` events then ``data: [DONE]``, in a few
    C-level passes and one typed decode. Returns None when the body is anything else."""
    if not body.startswith(b"data: {"):
        return None
    k = body.rfind(_DONE_SEP)
    if k < 0 or body[k + 2 :].rstrip(b"\n") != b"data: [DONE]" or b"\r" in body:
        return None
    # Expect one line per event: data line, blank line, data line..., then the lines of
    # ``data: [DONE]`` and its newlines. ``readlines`` finds line ends with memchr, much
    # faster than splitting on "\n\ndata: ". Each payload keeps its "\n" (JSON
    # whitespace), so ``data`` lines need no second check for other lines.
    lines = io.BytesIO(body).readlines()
    end = len(lines) - max(len(body) - k - 14, 1)
    datas = lines[0:end:2]
    blanks = lines[1:end:2]
    if len(datas) != len(blanks) or blanks.count(b"\n") != len(blanks):
        return None  # an event with another line (event:, id:, a comment, more data)
    payloads = list(map(bytes.removeprefix, datas, repeat(b"data: ")))
    head = payloads[0]
    payloads[0] = b"[" + head
    payloads[-1] += b"]"
    array = b",".join(payloads)
    # The data lines hold the first k + 2 bytes but the n blank lines; the array has
    # them less 6 bytes per removed prefix, plus brackets and commas. A line that is
    # not ``data: ...`` keeps its bytes.
    n = len(payloads)
    if len(array) != k + 3 - 6 * n:
        return None
    asm = Assembler()
    n = _fast_text(asm, head, array)
    if n < 0:
        return None
    if n == 0:
        try:
            chunks = CHUNKS_DECODER.decode(array)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        asm.feed_decoded(chunks)
        n = len(chunks)
    out = asm.outcome
    out.done = True
    out.events = n + 1
    if out.problems:
        # Offsets are computed only when there is something to report.
        starts = [0]
        pos = 0
        while True:
            pos = body.find(_SEP, pos, k + 2)
            if pos < 0:
                break
            starts.append(pos + 2)
            pos += 2
        out.problems = [
            msgspec.structs.replace(p, offset=starts[p.event_index])
            if p.event_index is not None
            else p
            for p in out.problems
        ]
    tt = read_times(reads)
    if tt is not None and n:
        out.t_first_ns = time_at(tt, body.find(b"\n\n") + 2)
        out.t_last_ns = time_at(tt, k + 2)
    return asm.finish()


def _fast_text(asm: Assembler, head: bytes, array: bytes) -> int:
    """Feed a ``text_completion`` stream to ``asm`` with the smaller text types.

    ``head`` is the first payload, ``array`` all of them as a JSON array. Returns how
    many chunks were fed; 0 when this is not such a stream, or some chunk needs the
    general path (unknown keys, another ``object``, an error...), with ``asm`` untouched;
    -1 when the array is not valid JSON.
    """
    if b"text_completion" not in head:
        return 0
    try:
        first = CHUNK_DECODER.decode(head)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return 0
    if first.object != "text_completion" or first.error:
        return 0
    try:
        chunks = TEXT_CHUNKS_DECODER.decode(array)
    except msgspec.ValidationError:
        return 0
    except msgspec.DecodeError:
        return -1
    asm.feed_decoded(chunks, first=first)
    return len(chunks)


def _slow(body: bytes, reads: list[Read] | None) -> Completion:
    """Event by event through the SSE parser: exact offsets, timing, every fault."""
    parser = SSEParser()
    events = []
    asm = Assembler()
    try:
        if reads:
            for r in reads:
                events.extend(parser.feed(r.data, r.t_ns))
        else:
            events.extend(parser.feed(body))
        events.extend(parser.finish())
    except SSEError as exc:
        asm.note("invalid_sse", str(exc), offset=parser.bytes_fed)
    index = 0
    for ev in events:
        if not ev.data:
            continue
        t = ev.t_end_ns if ev.t_end_ns is not None else ev.t_start_ns
        asm.feed_event(
            ev.data, index, event=ev.event, offset=ev.start, t_ns=t, complete=ev.complete
        )
        index += 1
    return asm.finish()
