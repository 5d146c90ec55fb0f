"""The incremental assembler for chat and text completion streams: chunks in, completion out.

On well-formed OpenAI streams the result equals the openai SDK's
``ChatCompletionStreamState`` snapshot; where that SDK crashes or garbles (repeated
roles and tool ids, missing or sparse tool indices, out-of-order choices, null deltas,
usage not in the last chunk...) the robust rules of the reassembly spec apply.

Faults never raise: a mid-stream error event, a missing ``[DONE]``, a cut-off last
event or a payload that is not JSON end up in ``result.outcome.problems`` with the
event index and byte offset, and everything assembled before them is kept. The
whole-body fast path (``openai_chat.whole``) feeds it through `Assembler.feed_decoded`.
"""

from __future__ import annotations

from typing import Any, Union, cast

import msgspec
from msgspec import UNSET

from streamtape.formats.base import ProblemLog, StreamOutcome, copy_json
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.formats.openai_chat.slots import ChatSlot, TextSlot
from streamtape.formats.openai_chat.wire import (
    CHUNK_DECODER,
    Chunk,
    JSONDict,
    TextChunk,
    decode_chunk_lenient,
)

__all__ = ["Assembler", "Completion"]

Completion = Union[ChatCompletion, TextCompletion]  # noqa: UP007 - runtime alias on 3.10

_CHAT_OBJECTS = frozenset({"chat.completion.chunk", "chat.completion"})
_NEVER = object()


class Assembler(ProblemLog):
    """Incremental assembler for ``chat.completion.chunk`` and ``text_completion`` streams.

    The stream kind is taken from the first accepted chunk's ``object``. Feed chunk
    payloads with :meth:`feed` (or whole SSE events with :meth:`feed_event`), look at
    the result so far with :meth:`snapshot`, and end with :meth:`finish`.
    """

    def __init__(self) -> None:
        self._expect: object = _NEVER  # the ``object`` value of accepted chunks
        self._text = False
        self._started = False
        self._chat: dict[int, ChatSlot] = {}
        self._texts: dict[int, TextSlot] = {}
        self._top: JSONDict = {}
        self._usage: JSONDict | None = None
        self._fingerprint: str | None = None
        self._fix = False
        self._after_done_noted = False
        self.outcome = StreamOutcome()

    # ----------------------------------------------------------------- feeding

    def feed(
        self,
        chunk: bytes | Chunk,
        *,
        event_index: int | None = None,
        offset: int | None = None,
        t_ns: int | None = None,
    ) -> None:
        """Add one chunk: the JSON bytes of one event's data, or an already decoded Chunk.

        ``event_index``, ``offset`` and ``t_ns`` only label problems and timing.
        """
        if isinstance(chunk, Chunk):
            self._feed_chunk(chunk, event_index, offset, t_ns)
            return
        try:
            decoded = CHUNK_DECODER.decode(chunk)
        except (msgspec.ValidationError, msgspec.DecodeError):
            try:
                decoded, used_json = decode_chunk_lenient(chunk)
            except (ValueError, msgspec.MsgspecError, RecursionError) as exc:
                kind = (
                    "invalid_chunk" if isinstance(exc, msgspec.ValidationError) else "invalid_json"
                )
                self.note(
                    kind,
                    f"{kind.replace('_', ' ')}: {exc}; data {chunk[:80]!r}",
                    event_index,
                    offset,
                    t_ns,
                )
                return
            if used_json:
                self._fix = True
                self._note_fallback(chunk, event_index, offset, t_ns)
        self._feed_chunk(decoded, event_index, offset, t_ns)

    def _note_fallback(
        self, chunk: bytes, event_index: int | None, offset: int | None, t_ns: int | None
    ) -> None:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = (
                f"the payload is not UTF-8 ({exc.reason} at byte {exc.start}); read with U+FFFD"
            )
            self.note("invalid_utf8", message, event_index, offset, t_ns)
            return
        message = "msgspec rejected this JSON (NaN, Infinity or a lone surrogate); "
        message += "read it with json.loads"
        self.note("json_fallback", message, event_index, offset, t_ns)

    def feed_event(
        self,
        data: bytes,
        index: int,
        *,
        event: str = "message",
        offset: int | None = None,
        t_ns: int | None = None,
        complete: bool = True,
    ) -> None:
        """Add one SSE event's data: handles ``[DONE]``, ``event: error`` and cut-off events."""
        out = self.outcome
        out.events += 1
        if out.done:
            if not self._after_done_noted:
                self._after_done_noted = True
                self.note(
                    "after_done", "events after data: [DONE] were ignored", index, offset, t_ns
                )
            return
        if data.startswith(b"[DONE]"):
            out.done = True
            return
        if not complete:
            self.note_truncated(index, offset, t_ns)
        if event == "error":
            try:
                err: Any = msgspec.json.decode(data)
            except msgspec.DecodeError:
                err = data.decode("utf-8", "replace")
            if isinstance(err, dict) and err.get("error"):
                err = err["error"]
            self._error(err, index, offset, t_ns)
            return
        self.feed(data, event_index=index, offset=offset, t_ns=t_ns)

    def _error(self, err: Any, index: int | None, offset: int | None, t_ns: int | None) -> None:
        msg = err.get("message") if isinstance(err, dict) else None
        if not isinstance(msg, str) or not msg:
            msg = str(err)[:200]
        if self.outcome.error is None:
            self.outcome.error = err
        self.note("error_event", f"the server sent an error mid-stream: {msg}", index, offset, t_ns)

    def _feed_chunk(
        self, chunk: Chunk, index: int | None, offset: int | None, t_ns: int | None
    ) -> None:
        if (chunk.error or chunk.object != self._expect) and not self._odd(
            chunk, index, offset, t_ns
        ):
            return
        out = self.outcome
        out.chunks += (self._apply_text if self._text else self._apply_chat)([chunk], index or 0)
        if t_ns is not None:
            if out.t_first_ns is None:
                out.t_first_ns = t_ns
            out.t_last_ns = t_ns

    def feed_decoded(
        self,
        chunks: list[Chunk] | list[TextChunk],
        *,
        first_index: int = 0,
        text: bool = False,
        first: Chunk | None = None,
    ) -> None:
        """Feed chunks decoded many at once: the whole-body fast path's one entry.

        ``first_index`` is the event index of ``chunks[0]`` (a body may come in several
        windows). ``chunks`` are `Chunk` values, or with ``text`` the smaller
        `TextChunk` values of a ``text_completion`` stream, whose first window passes
        ``first``: its first chunk decoded as a `Chunk` (it starts the stream: id, model...).
        """
        if text:
            self._feed_text_fast(first, cast("list[TextChunk]", chunks))
        else:
            self._feed_many(cast("list[Chunk]", chunks), first_index)

    def _feed_many(self, chunks: list[Chunk], first_index: int) -> None:
        """Feed decoded chunks at once; event index = position from ``first_index``."""
        i, n = 0, len(chunks)
        while i < n and not self._started:
            self._feed_chunk(chunks[i], first_index + i, None, None)
            i += 1
        if i < n:
            apply = self._apply_text if self._text else self._apply_chat
            self.outcome.chunks += apply(chunks[i:] if i else chunks, first_index + i)

    def _odd(self, chunk: Chunk, index: int | None, offset: int | None, t_ns: int | None) -> bool:
        """The uncommon chunks: errors, the first chunk, a foreign ``object``.

        Returns whether the chunk should still be assembled.
        """
        if chunk.error:
            self._error(chunk.error, index, offset, t_ns)
            return False
        obj = chunk.object
        if not self._started:
            if obj == "text_completion":
                self._text = True
            elif obj is not None and obj not in _CHAT_OBJECTS:
                self.note(
                    "skipped_chunk", f"skipped a chunk with object={obj!r}", index, offset, t_ns
                )
                return False
            self._started = True
            self._expect = obj
            top = self._top
            top["id"] = chunk.id
            top["created"] = chunk.created
            top["model"] = chunk.model
            if chunk.service_tier is not UNSET:
                top["service_tier"] = chunk.service_tier
            if chunk.extra:
                top["extra"] = copy_json(chunk.extra)
            return True
        if obj is None or (obj in _CHAT_OBJECTS and not self._text):
            return True
        self._skip(obj, index, offset, t_ns)
        return False

    def _skip(self, obj: str, index: int | None, offset: int | None, t_ns: int | None) -> None:
        msg = f"skipped a chunk with object={obj!r} (not a chunk of this stream)"
        self.note("skipped_chunk", msg, index, offset, t_ns)

    def _apply_chat(self, chunks: list[Chunk], first_index: int) -> int:  # noqa: C901 - benchmarked hot loop, flat on purpose
        """Apply chat chunks; the hot loop, so it is written flat. Returns how many applied."""
        slots = self._chat
        expect = self._expect
        applied = 0
        usage = fingerprint = None
        last_idx = -1
        slot: ChatSlot | None = None
        for i, chunk in enumerate(chunks, first_index):
            if chunk.error or chunk.object != expect:
                if not self._odd(chunk, i, None, None):
                    continue
                if self._text:  # only possible for a first chunk seen here
                    applied += self._apply_text([chunk], i)
                    continue
            applied += 1
            choices = chunk.choices
            if choices:
                for ch in choices:
                    idx = ch.index
                    if idx is None:
                        idx = 0
                    if idx != last_idx or slot is None:
                        slot = slots.get(idx)
                        if slot is None:
                            slot = slots[idx] = ChatSlot(idx)
                        last_idx = idx
                    d: Any = ch.delta  # Any: the identity chain below is not a type test
                    if d is not None:
                        c = d.content
                        if c.__class__ is str:
                            slot.content.append(c)  # type: ignore[arg-type,unused-ignore]
                        elif c is not None:
                            if slot.content_list is None:
                                slot.content_list = []
                            slot.content_list.extend(copy_json(c))
                        if not (
                            d.role
                            is d.tool_calls
                            is d.refusal
                            is d.reasoning_content
                            is d.reasoning
                            is d.function_call
                            is d.audio
                            is d.annotations
                            is d.extra
                            is None
                        ):
                            slot.rare(d)
                    fr = ch.finish_reason
                    if fr:
                        slot.finish_reason = fr
                    lp = ch.logprobs
                    if lp is not None:
                        slot.add_logprobs(lp)
                    if ch.extra is not None:
                        # Choice-level extras: each key keeps its first value.
                        ex = slot.extra if slot.extra is not None else {}
                        for k, v in ch.extra.items():
                            if k not in ex:
                                ex[k] = copy_json(v)
                        slot.extra = ex
            u = chunk.usage
            if u is not None:
                usage = u
            sf = chunk.system_fingerprint
            if sf is not None:
                fingerprint = sf
        if usage is not None:
            self._usage = usage
        if fingerprint is not None:
            self._fingerprint = fingerprint
        return applied

    def _apply_text(self, chunks: list[Chunk], first_index: int) -> int:
        """Apply text-completion chunks. Returns how many applied."""
        applied = 0
        for i, chunk in enumerate(chunks, first_index):
            if (chunk.error or chunk.object != self._expect) and not self._odd(
                chunk, i, None, None
            ):
                continue
            applied += 1
            for ch in chunk.choices or ():
                self._text_slot(ch.index).add(ch)
            if chunk.usage is not None:
                self._usage = chunk.usage
            if chunk.system_fingerprint is not None:
                self._fingerprint = chunk.system_fingerprint
        return applied

    def _feed_text_fast(self, first: Chunk | None, chunks: list[TextChunk]) -> None:
        """Feed a window of a decoded ``text_completion`` stream (the fast path).

        ``first`` (given for the first window only) is ``chunks[0]`` decoded as a
        :class:`Chunk`, with ``object`` equal to
        ``"text_completion"`` and no ``error``; the decoder has refused any other
        ``object`` value, so every chunk is assembled, as :meth:`_apply_text` would.
        The loop is written flat for the usual chunk of exactly one choice.
        """
        if first is not None:
            self._odd(first, 0, None, None)  # starts the text stream: id, created, model...
        slot: TextSlot | None = None
        last: object = _NEVER  # the ``index`` object ``slot`` was looked up for
        texts: list[str] = []  # slot.text
        usage = fingerprint = None
        for chunk in chunks:
            try:
                (ch,) = chunk.choices
            except ValueError:  # no choice (a usage chunk) or several
                for ch in chunk.choices:
                    self._text_slot(ch.index).add(ch)
            else:
                if ch.index is not last:  # identity: equal ints only cost a look-up
                    last = ch.index
                    slot = self._text_slot(ch.index)
                    texts = slot.text
                texts.append(ch.text)
                if ch.finish_reason is not None or ch.logprobs is not None:
                    assert slot is not None
                    slot.add_rest(ch)
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.system_fingerprint is not None:
                fingerprint = chunk.system_fingerprint
        if usage is not None:
            self._usage = usage
        if fingerprint is not None:
            self._fingerprint = fingerprint
        self.outcome.chunks += len(chunks)

    def _text_slot(self, index: int | None) -> TextSlot:
        """The slot of text choice ``index`` (a missing index is choice 0)."""
        idx = index if index is not None else 0
        slot = self._texts.get(idx)
        if slot is None:
            slot = self._texts[idx] = TextSlot(idx)
        return slot

    # ----------------------------------------------------------------- results

    def snapshot(self) -> Completion:
        """The completion as assembled so far (a copy; feeding on does not change it)."""
        return self._build(copy=True)

    def _build(self, copy: bool) -> Completion:
        top = self._top
        fields: dict[str, Any] = {
            "id": top.get("id"),
            "created": top.get("created"),
            "model": top.get("model"),
            "usage": copy_json(self._usage),
            "system_fingerprint": self._fingerprint,
            "extra": copy_json(top.get("extra")),
            "outcome": msgspec.structs.replace(self.outcome, problems=list(self.outcome.problems)),
        }
        if "service_tier" in top:
            fields["service_tier"] = top["service_tier"]
        fix = self._fix
        if self._text:
            return TextCompletion(
                choices=[self._texts[i].build(fix, copy) for i in sorted(self._texts)], **fields
            )
        return ChatCompletion(
            choices=[self._chat[i].build(fix, copy) for i in sorted(self._chat)], **fields
        )

    def finish(self) -> Completion:
        """End the stream: note a missing ``[DONE]`` or an empty stream; return the result."""
        out = self.outcome
        kinds = {p.kind for p in out.problems}
        if not out.done and out.streamed and "missing_done" not in kinds:
            self.note("missing_done", "the stream ended without data: [DONE]")
        if not self._started and out.error is None and "empty" not in kinds:
            self.note("empty", "no completion chunk in the stream")
        # The result takes over the accumulated lists: no copy (feed no more after this).
        return self._build(copy=False)
