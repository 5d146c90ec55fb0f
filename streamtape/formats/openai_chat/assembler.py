"""Reassemble streamed chunks into the full completion object.

On well-formed OpenAI streams the result equals the openai SDK's
``ChatCompletionStreamState`` snapshot; where that SDK crashes or garbles (repeated
roles and tool ids, missing or sparse tool indices, out-of-order choices, null deltas,
usage not in the last chunk...) the robust rules of the reassembly spec apply.

Faults never raise: a mid-stream error event, a missing ``[DONE]``, a cut-off last
event or a payload that is not JSON end up in ``result.outcome.problems`` with the
event index and byte offset, and everything assembled before them is kept.

Speed: a whole body takes a fast path when it is the plain ``data: {...}\\n\\n`` shape.
The payloads are spliced into one JSON array with C-level byte operations and decoded
in a single typed msgspec call; strings are joined once at the end. Anything unusual
(comments, CRLF, other fields, unknown keys, invalid JSON) falls back to the SSE
parser and per-chunk decoding, which give exact offsets.
"""

from __future__ import annotations

import io
from itertools import repeat
from typing import Any, Union

import msgspec
from msgspec import UNSET

from streamtape.core.exchange import Read
from streamtape.formats.base import (
    ProblemLog,
    Source,
    StreamOutcome,
    assemble_with,
    error_body_outcome,
    event_time,
    read_times,
    sse_data_events,
    time_at,
)
from streamtape.formats.base import copy_json as _copy
from streamtape.formats.openai_chat.results import (
    ChatChoice,
    ChatCompletion,
    ChatMessage,
    FunctionCall,
    TextChoice,
    TextCompletion,
    ToolCall,
    completion_from_dict,
)
from streamtape.formats.openai_chat.wire import (
    CHUNK_DECODER,
    CHUNKS_DECODER,
    TEXT_CHUNKS_DECODER,
    Chunk,
    Delta,
    JSONDict,
    TextChunk,
    TextChunkChoice,
    decode_chunk_lenient,
)

__all__ = ["Assembler", "Completion", "assemble"]

Completion = Union[ChatCompletion, TextCompletion]  # noqa: UP007 - runtime alias on 3.10

_CHAT_OBJECTS = frozenset({"chat.completion.chunk", "chat.completion"})
_TEXT_LOGPROB_LISTS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")
_NEVER = object()


def _same(v: Any) -> Any:
    return v


def _fix_surrogates(s: str) -> str:
    """Join surrogate halves that arrived in separate chunks; replace lone ones."""
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _merge(
    acc: JSONDict, delta: JSONDict, first: tuple[str, ...] = (), last: tuple[str, ...] = ()
) -> None:
    """``accumulate_delta`` for keys streamtape does not model, without its crashes.

    Strings concatenate, numbers add, dicts recurse, lists extend (entries carrying an
    ``index`` merge into the entry with that index), ``index``/``type`` replace.
    Keys in ``first`` keep their first non-empty value, keys in ``last`` their last.
    """
    for k, v in delta.items():
        cur = acc.get(k)
        if k not in acc or cur is None:
            acc[k] = _copy(v)
        elif v is None or k in first:
            continue
        elif k in last or k == "index" or k == "type":
            acc[k] = _copy(v)
        elif isinstance(cur, str) and isinstance(v, str):
            acc[k] = "".join((cur, v))
        elif isinstance(cur, (int, float)) and isinstance(v, (int, float)):
            acc[k] = cur + v
        elif isinstance(cur, dict) and isinstance(v, dict):
            _merge(cur, v)
        elif isinstance(cur, list) and isinstance(v, list):
            for entry in v:
                idx = entry.get("index") if isinstance(entry, dict) else None
                target = None
                if isinstance(idx, int):
                    target = next(
                        (e for e in cur if isinstance(e, dict) and e.get("index") == idx), None
                    )
                if target is None:
                    cur.append(_copy(entry))
                else:
                    _merge(target, entry)


class _Tool:
    """One tool call being accumulated."""

    __slots__ = ("args", "extra", "fn_extra", "has_fn", "id", "name", "type", "wire_index")

    def __init__(self, wire_index: int | None) -> None:
        self.wire_index = wire_index
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.args: list[str] = []
        self.has_fn = False
        self.extra: JSONDict | None = None
        self.fn_extra: JSONDict | None = None


class _ChatSlot:
    """One chat choice being accumulated; strings are kept as parts, joined at the end."""

    __slots__ = (
        "annotations",
        "audio",
        "by_index",
        "content",
        "content_list",
        "dextra",
        "extra",
        "fc_args",
        "fc_extra",
        "fc_name",
        "finish_reason",
        "has_fc",
        "index",
        "logprobs",
        "reasoning",
        "reasoning_content",
        "refusal",
        "role",
        "tools",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: list[str] = []
        self.content_list: list[Any] | None = None
        self.refusal: list[str] | None = None
        self.reasoning_content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.tools: list[_Tool] = []
        self.by_index: dict[int, _Tool] = {}
        self.fc_name: str | None = None
        self.fc_args: list[str] = []
        self.fc_extra: JSONDict | None = None
        self.has_fc = False
        self.audio: JSONDict | None = None
        self.annotations: list[Any] | None = None
        self.dextra: JSONDict | None = None
        self.finish_reason: str | None = None
        self.logprobs: JSONDict | None = None
        # Choice-level extras (Azure content_filter_results...): filled by the apply loop.
        self.extra: JSONDict | None = None

    def rare(self, d: Delta) -> None:
        """Everything in a delta except string content: the uncommon fields."""
        if d.role and self.role is None:
            self.role = d.role
        if d.refusal is not None:
            if self.refusal is None:
                self.refusal = []
            self.refusal.append(d.refusal)
        if d.reasoning_content is not None:
            if self.reasoning_content is None:
                self.reasoning_content = []
            self.reasoning_content.append(d.reasoning_content)
        if d.reasoning is not None:
            if self.reasoning is None:
                self.reasoning = []
            self.reasoning.append(d.reasoning)
        if d.tool_calls is not None:
            for frag in d.tool_calls:
                fn = frag.function
                # Common case: an arguments-only continuation of a known call.
                if (
                    fn is not None
                    and fn.arguments
                    and frag.id is None
                    and frag.type is None
                    and frag.extra is None
                    and fn.name is None
                    and fn.extra is None
                ):
                    tool = self.by_index.get(frag.index) if frag.index is not None else None
                    if tool is not None:
                        tool.has_fn = True
                        tool.args.append(fn.arguments)
                        continue
                self._tool(frag.index, frag.id, frag.type, fn, frag.extra)
        fc = d.function_call
        if fc is not None:
            self.has_fc = True
            if fc.name and self.fc_name is None:
                self.fc_name = fc.name
            if fc.arguments:
                self.fc_args.append(fc.arguments)
            if fc.extra:
                self.fc_extra = self.fc_extra or {}
                _merge(self.fc_extra, fc.extra)
        if d.audio is not None:
            self.audio = self.audio if self.audio is not None else {}
            _merge(self.audio, d.audio, first=("id",), last=("expires_at",))
        if d.annotations is not None:
            self.annotations = self.annotations if self.annotations is not None else []
            self.annotations.extend(_copy(d.annotations))
        if d.extra:
            self.dextra = self.dextra if self.dextra is not None else {}
            _merge(self.dextra, d.extra)

    def _tool(
        self,
        wire: int | None,
        tid: str | None,
        ttype: str | None,
        fn: Any,
        extra: JSONDict | None,
    ) -> None:
        """Route one fragment to its call: by index, or by id when the index is missing
        or a different id shows up at an index already in use (parallel calls that a
        gateway put all at index 0)."""
        if wire is None:
            tool = self.tools[-1] if self.tools else None
            if tool is None or (tid and tid != tool.id):
                tool = _Tool(None)
                self.tools.append(tool)
        else:
            tool = self.by_index.get(wire)
            if tool is None or (tid and tool.id and tid != tool.id):
                tool = _Tool(wire)
                self.tools.append(tool)
                self.by_index[wire] = tool
        if tid and tool.id is None:
            tool.id = tid
        if ttype and tool.type is None:
            tool.type = ttype
        if fn is not None:
            tool.has_fn = True
            if fn.name and tool.name is None:
                tool.name = fn.name
            if fn.arguments:
                tool.args.append(fn.arguments)
            if fn.extra:
                tool.fn_extra = tool.fn_extra if tool.fn_extra is not None else {}
                _merge(tool.fn_extra, fn.extra)
        if extra:
            tool.extra = tool.extra if tool.extra is not None else {}
            _merge(tool.extra, extra)

    def add_logprobs(self, lp: JSONDict) -> None:
        """``content``/``refusal`` lists: the first non-null value as given, then extended."""
        mine = self.logprobs
        if mine is None:
            mine = self.logprobs = _copy(lp)
            mine.setdefault("content", None)
            mine.setdefault("refusal", None)
            return
        new = lp.get("content")
        if new:
            have = mine.get("content")
            if have is None:
                mine["content"] = have = []
            have.extend(new)
        new = lp.get("refusal")
        if new:
            have = mine.get("refusal")
            if have is None:
                mine["refusal"] = have = []
            have.extend(new)

    def build(self, fix: bool, copy: bool) -> ChatChoice:
        f = _fix_surrogates if fix else str
        cp = _copy if copy else _same
        content: str | list[Any] | None = None
        if self.content_list is not None:
            content = list(self.content_list)
            if self.content:
                content.append({"type": "text", "text": f("".join(self.content))})
        elif self.content:
            content = f("".join(self.content))
        msg = ChatMessage(
            role=self.role,
            content=content,
            refusal=f("".join(self.refusal)) if self.refusal is not None else None,
            extra=_copy(self.dextra) if self.dextra else None,
        )
        if self.tools:
            tools = self.tools
            if all(t.wire_index is not None for t in tools):
                tools = sorted(tools, key=lambda t: t.wire_index or 0)
            msg.tool_calls = [
                ToolCall(
                    index=i,
                    id=t.id,
                    type=t.type or "function",
                    function=FunctionCall(
                        name=t.name,
                        arguments=f("".join(t.args)),
                        extra=_copy(t.fn_extra) if t.fn_extra else None,
                    )
                    if t.has_fn
                    else None,
                    extra=_copy(t.extra) if t.extra else None,
                )
                for i, t in enumerate(tools)
            ]
        if self.has_fc:
            msg.function_call = FunctionCall(
                name=self.fc_name,
                arguments=f("".join(self.fc_args)),
                extra=_copy(self.fc_extra) if self.fc_extra else None,
            )
        if self.audio is not None:
            msg.audio = _copy(self.audio)
        if self.annotations is not None:
            msg.annotations = cp(self.annotations)
        if self.reasoning_content is not None:
            msg.reasoning_content = f("".join(self.reasoning_content))
        if self.reasoning is not None:
            msg.reasoning = f("".join(self.reasoning))
        return ChatChoice(
            index=self.index,
            message=msg,
            finish_reason=self.finish_reason,
            logprobs=cp(self.logprobs),
            extra=_copy(self.extra) if self.extra else None,
        )


class _TextSlot:
    """One text-completion choice being accumulated."""

    __slots__ = ("extra", "finish_reason", "index", "logprobs", "text")

    def __init__(self, index: int) -> None:
        self.index = index
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.logprobs: JSONDict | None = None
        self.extra: JSONDict | None = None

    def add_logprobs(self, lp: JSONDict) -> None:
        """The four lists are extended; null lists add nothing, null entries are kept."""
        mine = self.logprobs
        if mine is None:
            mine = self.logprobs = {k: None for k in _TEXT_LOGPROB_LISTS}
            for k, v in lp.items():
                if k not in mine:
                    mine[k] = _copy(v)
        for key in _TEXT_LOGPROB_LISTS:
            new = lp.get(key)
            if new:
                have = mine.get(key)
                if have is None:
                    mine[key] = have = []
                have.extend(new)

    def build(self, fix: bool, copy: bool) -> TextChoice:
        cp = _copy if copy else _same
        text = "".join(self.text)
        return TextChoice(
            index=self.index,
            text=_fix_surrogates(text) if fix else text,
            finish_reason=self.finish_reason,
            logprobs=cp(self.logprobs),
            extra=_copy(self.extra) if self.extra else None,
        )


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
        self._chat: dict[int, _ChatSlot] = {}
        self._texts: dict[int, _TextSlot] = {}
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
                self.note(
                    "json_fallback",
                    "msgspec rejected this JSON (NaN, Infinity or a lone surrogate); "
                    "read it with json.loads",
                    event_index,
                    offset,
                    t_ns,
                )
        self._feed_chunk(decoded, event_index, offset, t_ns)

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
            self.note(
                "truncated_tail",
                "the stream ended inside this event (no blank line after it)",
                index,
                offset,
                t_ns,
            )
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

    def _feed_many(self, chunks: list[Chunk]) -> None:
        """Feed a decoded stream at once; event index = position (the fast path)."""
        i, n = 0, len(chunks)
        while i < n and not self._started:
            self._feed_chunk(chunks[i], i, None, None)
            i += 1
        if i < n:
            apply = self._apply_text if self._text else self._apply_chat
            self.outcome.chunks += apply(chunks[i:] if i else chunks, i)

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
                top["extra"] = _copy(chunk.extra)
            return True
        if obj is None or (obj in _CHAT_OBJECTS and not self._text):
            return True
        self._skip(obj, index, offset, t_ns)
        return False

    def _skip(self, obj: str, index: int | None, offset: int | None, t_ns: int | None) -> None:
        msg = f"skipped a chunk with object={obj!r} (not a chunk of this stream)"
        self.note("skipped_chunk", msg, index, offset, t_ns)

    def _apply_chat(self, chunks: list[Chunk], first_index: int) -> int:
        """Apply chat chunks; the hot loop, so it is written flat. Returns how many applied."""
        slots = self._chat
        expect = self._expect
        applied = 0
        usage = fingerprint = None
        last_idx = -1
        slot: _ChatSlot | None = None
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
                            slot = slots[idx] = _ChatSlot(idx)
                        last_idx = idx
                    d: Any = ch.delta  # Any: the identity chain below is not a type test
                    if d is not None:
                        c = d.content
                        if c.__class__ is str:
                            slot.content.append(c)  # type: ignore[arg-type,unused-ignore]
                        elif c is not None:
                            if slot.content_list is None:
                                slot.content_list = []
                            slot.content_list.extend(_copy(c))
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
                                ex[k] = _copy(v)
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
        slots = self._texts
        applied = 0
        for i, chunk in enumerate(chunks, first_index):
            if (chunk.error or chunk.object != self._expect) and not self._odd(
                chunk, i, None, None
            ):
                continue
            applied += 1
            for ch in chunk.choices or ():
                idx = ch.index if ch.index is not None else 0
                slot = slots.get(idx)
                if slot is None:
                    slot = slots[idx] = _TextSlot(idx)
                if ch.text is not None:
                    slot.text.append(ch.text)
                if ch.finish_reason:
                    slot.finish_reason = ch.finish_reason
                if ch.logprobs is not None:
                    slot.add_logprobs(ch.logprobs)
                if ch.extra:
                    # vLLM stop_reason / token_ids: the last non-null value wins.
                    ex = slot.extra if slot.extra is not None else {}
                    ex.update({k: _copy(v) for k, v in ch.extra.items() if v is not None})
                    slot.extra = ex
            if chunk.usage is not None:
                self._usage = chunk.usage
            if chunk.system_fingerprint is not None:
                self._fingerprint = chunk.system_fingerprint
        return applied

    def _feed_text_fast(self, first: Chunk, chunks: list[TextChunk]) -> None:
        """Feed a whole decoded ``text_completion`` stream (the fast path).

        ``first`` is ``chunks[0]`` decoded as a :class:`Chunk`, with ``object`` equal to
        ``"text_completion"`` and no ``error``; the decoder has refused any other
        ``object`` value, so every chunk is assembled, as :meth:`_apply_text` would.
        The loop is written flat for the usual chunk of exactly one choice.
        """
        self._odd(first, 0, None, None)  # starts the text stream: id, created, model...
        slots = self._texts
        slot: _TextSlot | None = None
        last: object = _NEVER  # the ``index`` object ``slot`` was looked up for
        texts: list[str] = []  # slot.text
        usage = fingerprint = None
        for chunk in chunks:
            try:
                (ch,) = chunk.choices
            except ValueError:  # no choice (a usage chunk) or several
                for ch in chunk.choices:
                    self._text_choice(ch)
            else:
                if ch.index is not last:  # identity: equal ints only cost a look-up
                    last = idx = ch.index
                    if idx is None:
                        idx = 0
                    slot = slots.get(idx)
                    if slot is None:
                        slot = slots[idx] = _TextSlot(idx)
                    texts = slot.text
                texts.append(ch.text)
                if ch.finish_reason is not None or ch.logprobs is not None:
                    assert slot is not None
                    if ch.finish_reason:
                        slot.finish_reason = ch.finish_reason
                    if ch.logprobs is not None:
                        slot.add_logprobs(ch.logprobs)
            if chunk.usage is not None or chunk.system_fingerprint is not None:
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.system_fingerprint is not None:
                    fingerprint = chunk.system_fingerprint
        if usage is not None:
            self._usage = usage
        if fingerprint is not None:
            self._fingerprint = fingerprint
        self.outcome.chunks += len(chunks)

    def _text_choice(self, ch: TextChunkChoice) -> None:
        """One choice of a text chunk, by the rules of :meth:`_apply_text`."""
        idx = ch.index if ch.index is not None else 0
        slot = self._texts.get(idx)
        if slot is None:
            slot = self._texts[idx] = _TextSlot(idx)
        slot.text.append(ch.text)
        if ch.finish_reason:
            slot.finish_reason = ch.finish_reason
        if ch.logprobs is not None:
            slot.add_logprobs(ch.logprobs)

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
            "usage": _copy(self._usage),
            "system_fingerprint": self._fingerprint,
            "extra": _copy(top.get("extra")),
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


# --------------------------------------------------------------------- whole bodies


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
    except msgspec.DecodeError:
        try:
            import json

            obj = json.loads(body.decode("utf-8-sig"))
        except ValueError:
            return None  # e.g. bare JSON lines (E4): let the SSE path report it
    if not isinstance(obj, dict):
        return None
    if obj.get("error") or "choices" not in obj:
        return ChatCompletion(outcome=error_body_outcome(obj))
    return completion_from_dict(obj)


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
        asm._feed_many(chunks)
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
    asm._feed_text_fast(first, chunks)
    return len(chunks)


def _slow(body: bytes, reads: list[Read] | None) -> Completion:
    """Event by event through the SSE parser: exact offsets, timing, every fault."""
    events, problem = sse_data_events(body, reads)
    asm = Assembler()
    if problem is not None:
        asm.outcome.problems.append(problem)
    for index, ev in enumerate(events):
        t = event_time(ev)
        asm.feed_event(
            ev.data, index, event=ev.event, offset=ev.start, t_ns=t, complete=ev.complete
        )
    return asm.finish()
