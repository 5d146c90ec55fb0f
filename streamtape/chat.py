"""msgspec types for chat / text completion chunks and the completions built from them.

Two families live here:

* **Wire types** (``Chunk`` and friends): what one SSE ``data:`` payload decodes into.
  They declare the fields the OpenAI API sends and *forbid* unknown ones, so a whole
  stream decodes in one typed ``msgspec`` call when it holds nothing unusual, and any
  gateway extra (``provider``, ``x_groq``, ``native_finish_reason``...) makes decoding
  fail loudly instead of dropping the key. The assembler then decodes that chunk the
  slow way, moving unknown keys into the ``extra`` field of the level they came from
  (see :func:`decode_chunk_lenient`).
* **Result types** (``ChatCompletion``, ``TextCompletion``): the reassembled object.
  They keep unknown keys in ``extra`` and a status record in ``outcome``; ``to_dict()``
  gives the OpenAI-shaped dict (extras merged back, ``outcome`` left out).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

JSONDict = dict[str, Any]

# The JSON name the decoder would look for ``extra`` under: a key no
# server sends, so ``extra`` is never filled by decoding, only by the lenient path.
_EXTRA = msgspec.field(default=None, name="~streamtape.extra~")


# --------------------------------------------------------------------------- wire types


class FunctionDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A fragment of ``function`` inside a tool call, or of a legacy ``function_call``."""

    name: str | None = None
    arguments: str | None = None
    extra: JSONDict | None = _EXTRA


class ToolCallDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One tool-call fragment; ``index`` says which call it continues."""

    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None
    extra: JSONDict | None = _EXTRA


class Delta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The ``delta`` of one choice in a ``chat.completion.chunk``."""

    content: str | list[Any] | None = None
    role: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    function_call: FunctionDelta | None = None
    audio: JSONDict | None = None
    annotations: list[Any] | None = None
    extra: JSONDict | None = _EXTRA


class ChunkChoice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One choice of a chunk: a chat ``delta`` or a completion ``text``."""

    index: int | None = None
    delta: Delta | None = None
    text: str | None = None
    logprobs: JSONDict | None = None
    finish_reason: str | None = None
    extra: JSONDict | None = _EXTRA


class Chunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One ``chat.completion.chunk`` or streamed ``text_completion`` payload.

    ``error`` is set for the mid-stream ``{"error": {...}}`` events some servers send
    after HTTP 200; ``obfuscation`` is accepted so it does not force the slow path,
    and then dropped.
    """

    id: str | None = None
    object: str | None = None
    created: int | float | None = None
    model: str | None = None
    choices: list[ChunkChoice] | None = None
    system_fingerprint: str | None = None
    service_tier: str | UnsetType | None = UNSET
    usage: JSONDict | None = None
    obfuscation: str | None = None
    error: Any = None
    extra: JSONDict | None = _EXTRA


CHUNK_DECODER = msgspec.json.Decoder(Chunk)
"""Decodes one payload; raises on unknown keys (then use :func:`decode_chunk_lenient`)."""
CHUNKS_DECODER = msgspec.json.Decoder(list[Chunk])
"""Decodes a JSON array of payloads in one call: the fast path for whole streams."""


class TextChunkChoice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One choice of a streamed ``text_completion`` chunk (fast path only)."""

    index: int | None = None
    text: str = ""
    logprobs: JSONDict | None = None
    finish_reason: str | None = None


class TextChunk(
    msgspec.Struct,
    forbid_unknown_fields=True,
    gc=False,
    tag_field="object",
    tag="text_completion",
):
    """A ``text_completion`` chunk in the shape of :class:`Chunk`, for the fast path.

    Smaller than ``Chunk`` (no ``delta`` types), so a text stream decodes faster. The
    field types are those of ``Chunk``, with refusals that send a stream back to the
    general path: ``object`` must be ``"text_completion"`` when present (the tag),
    ``choices`` and a choice's ``text`` must not be null, there is no ``error`` field.
    An absent ``text`` reads as ``""``, which adds nothing, as null does in ``Chunk``.
    An absent ``object`` is accepted here and reads as null in ``Chunk``; the caller
    checks the first chunk with :data:`CHUNK_DECODER`, where that matters.
    """

    id: str | None = None
    created: int | float | None = None
    model: str | None = None
    choices: list[TextChunkChoice] = msgspec.field(default_factory=list)
    system_fingerprint: str | None = None
    service_tier: str | UnsetType | None = UNSET
    usage: JSONDict | None = None
    obfuscation: str | None = None


TEXT_CHUNKS_DECODER = msgspec.json.Decoder(list[TextChunk])
"""Decodes a whole ``text_completion`` stream joined as a JSON array (fast path)."""

_KNOWN: dict[type[msgspec.Struct], frozenset[str]] = {
    cls: frozenset(f for f in cls.__struct_fields__ if f != "extra")
    for cls in (Chunk, ChunkChoice, Delta, ToolCallDelta, FunctionDelta)
}


def _split(obj: JSONDict, cls: type[msgspec.Struct]) -> JSONDict | None:
    """Move keys ``cls`` does not declare out of ``obj``; return them (or None)."""
    known = _KNOWN[cls]
    extra = {k: obj.pop(k) for k in [k for k in obj if k not in known]}
    return extra or None


def decode_chunk_lenient(payload: bytes) -> tuple[Chunk, bool]:
    """Decode a payload that the strict decoder refused.

    Unknown keys at the chunk, choice, delta, tool-call and function levels are kept in
    the ``extra`` field of that level. JSON that msgspec rejects but Python's ``json``
    accepts (``NaN``, ``-Infinity``, lone surrogate escapes, a BOM) is read with
    ``json.loads``. Returns the chunk and whether that ``json`` fallback was needed.
    Raises ``ValueError`` (or a ``msgspec`` error) when the payload is not a chunk.
    """
    used_json = False
    try:
        raw: Any = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raw = json.loads(payload.decode("utf-8-sig", errors="surrogateescape"))
        used_json = True
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    # Pull extras out level by level (convert() would refuse them), remembering them
    # in order so they can be put back on the converted Structs.
    top = _split(raw, Chunk)
    levels: list[tuple[Any, ...]] = []
    choices = raw.get("choices")
    for ch in choices if isinstance(choices, list) else ():
        if not isinstance(ch, dict):
            continue
        cex = _split(ch, ChunkChoice)
        dex = fcx = None
        tex: list[tuple[JSONDict | None, JSONDict | None]] = []
        delta = ch.get("delta")
        if isinstance(delta, dict):
            dex = _split(delta, Delta)
            fc = delta.get("function_call")
            fcx = _split(fc, FunctionDelta) if isinstance(fc, dict) else None
            tcs = delta.get("tool_calls")
            for tc in tcs if isinstance(tcs, list) else ():
                if isinstance(tc, dict):
                    fn = tc.get("function")
                    fnx = _split(fn, FunctionDelta) if isinstance(fn, dict) else None
                    tex.append((_split(tc, ToolCallDelta), fnx))
        levels.append((cex, dex, fcx, tex))
    chunk = msgspec.convert(raw, Chunk)
    chunk.extra = top
    for ch_s, (cex, dex, fcx, tex) in zip(chunk.choices or [], levels, strict=False):
        ch_s.extra = cex
        d = ch_s.delta
        if d is not None:
            d.extra = dex
            if d.function_call is not None:
                d.function_call.extra = fcx
            for tc_s, (tcx, fnx) in zip(d.tool_calls or [], tex, strict=False):
                tc_s.extra = tcx
                if tc_s.function is not None:
                    tc_s.function.extra = fnx
    return chunk, used_json


# --------------------------------------------------------------------------- result types


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Something that went wrong or was unusual in a stream, and where.

    ``kind`` is one of: ``error_event`` (the server sent ``{"error": ...}``),
    ``invalid_json``, ``invalid_chunk`` (JSON, but not a chunk), ``json_fallback``
    (msgspec refused the JSON, Python's ``json`` read it: NaN, -Infinity, lone
    surrogates), ``missing_done``, ``truncated_tail`` (the last event had no blank line
    after it), ``after_done`` (events after ``[DONE]``), ``skipped_chunk`` (an ``object``
    that is not a chunk of this stream, e.g. Azure's filter placeholder),
    ``transport`` (the recorded exchange ended in an error), ``empty`` (no chunk at all).
    """

    kind: str
    message: str
    event_index: int | None = None
    """0-based index of the SSE event (counting every dispatched event with data)."""
    offset: int | None = None
    """Byte offset of the event's first byte in the response body."""
    t_ns: int | None = None
    """Arrival time of the event, when the reads were timed."""


class StreamOutcome(msgspec.Struct, kw_only=True):
    """How the stream ended; not part of the OpenAI-shaped output.

    ``ok`` is true when ``[DONE]`` (or a whole non-stream body) arrived and no
    ``error_event``, ``invalid_json``, ``invalid_chunk``, ``truncated_tail`` or
    ``transport`` problem was seen.
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
        bad = {"error_event", "invalid_json", "invalid_chunk", "truncated_tail", "transport"}
        return self.done and self.error is None and not any(p.kind in bad for p in self.problems)


class FunctionCall(msgspec.Struct, kw_only=True):
    """A complete ``function`` of a tool call, or a legacy ``function_call``."""

    name: str | None = None
    arguments: str = ""
    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        out: JSONDict = {"name": self.name, "arguments": self.arguments}
        if self.extra:
            out.update(self.extra)
        return out


class ToolCall(msgspec.Struct, kw_only=True):
    """A complete tool call. ``index`` is its position (streamed results only)."""

    id: str | None = None
    type: str = "function"
    function: FunctionCall | None = None
    index: int | UnsetType = UNSET
    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        out: JSONDict = {}
        if self.index is not UNSET:
            out["index"] = self.index
        out["id"] = self.id
        out["type"] = self.type
        if self.function is not None:
            out["function"] = self.function.to_dict()
        if self.extra:
            out.update(self.extra)
        return out


class ChatMessage(msgspec.Struct, kw_only=True):
    """The assistant message of one choice. UNSET fields never appeared in the stream."""

    role: str | None = "assistant"
    content: str | list[Any] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    function_call: FunctionCall | UnsetType = UNSET
    audio: JSONDict | UnsetType | None = UNSET
    annotations: list[Any] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    reasoning: str | UnsetType = UNSET
    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        out: JSONDict = {"role": self.role, "content": self.content, "refusal": self.refusal}
        if self.tool_calls is not UNSET:
            out["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        if self.function_call is not UNSET:
            out["function_call"] = self.function_call.to_dict()
        if self.audio is not UNSET:
            out["audio"] = self.audio
        if self.annotations is not UNSET:
            out["annotations"] = self.annotations
        if self.reasoning_content is not UNSET:
            out["reasoning_content"] = self.reasoning_content
        if self.reasoning is not UNSET:
            out["reasoning"] = self.reasoning
        if self.extra:
            out.update(self.extra)
        return out


class ChatChoice(msgspec.Struct, kw_only=True):
    """One choice of a chat completion."""

    index: int
    message: ChatMessage
    finish_reason: str | None = None
    logprobs: JSONDict | None = None
    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        out: JSONDict = {
            "index": self.index,
            "message": self.message.to_dict(),
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
        }
        if self.extra:
            out.update(self.extra)
        return out


class _Completion(msgspec.Struct, kw_only=True):
    """Fields and conversions shared by chat and text completions."""

    id: str | None = None
    created: int | float | None = None
    model: str | None = None
    usage: JSONDict | None = None
    system_fingerprint: str | None = None
    service_tier: str | UnsetType | None = UNSET
    extra: JSONDict | None = None
    outcome: StreamOutcome = msgspec.field(default_factory=StreamOutcome)

    def _top(self, obj: str, choices: list[JSONDict]) -> JSONDict:
        out: JSONDict = {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage,
            "system_fingerprint": self.system_fingerprint,
        }
        if self.service_tier is not UNSET:
            out["service_tier"] = self.service_tier
        if self.extra:
            out.update(self.extra)
        return out

    def to_json(self) -> bytes:
        """The OpenAI-shaped JSON of :meth:`to_dict`."""
        return msgspec.json.encode(self.to_dict())

    def to_dict(self) -> JSONDict:  # pragma: no cover - overridden
        raise NotImplementedError


class ChatCompletion(_Completion, kw_only=True):
    """A reassembled (or non-stream) ``chat.completion``."""

    object: str = "chat.completion"
    choices: list[ChatChoice] = msgspec.field(default_factory=list)

    def to_dict(self) -> JSONDict:
        """The OpenAI-shaped plain dict (extras merged back, ``outcome`` left out)."""
        return self._top(self.object, [c.to_dict() for c in self.choices])

    def to_openai(self) -> Any:
        """An ``openai.types.chat.ChatCompletion`` (needs the openai package).

        Built with ``construct`` so that partial results (no ``finish_reason`` yet) and
        provider extras survive where validation would reject them.
        """
        from openai.types.chat import ChatCompletion as OpenAIChatCompletion

        return OpenAIChatCompletion.construct(**self.to_dict())


class TextChoice(msgspec.Struct, kw_only=True):
    """One choice of a text completion."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    logprobs: JSONDict | None = None
    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        out: JSONDict = {
            "index": self.index,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
        }
        if self.extra:
            out.update(self.extra)
        return out


class TextCompletion(_Completion, kw_only=True):
    """A reassembled (or non-stream) ``text_completion``."""

    object: str = "text_completion"
    choices: list[TextChoice] = msgspec.field(default_factory=list)

    def to_dict(self) -> JSONDict:
        """The OpenAI-shaped plain dict (extras merged back, ``outcome`` left out)."""
        return self._top(self.object, [c.to_dict() for c in self.choices])

    def to_openai(self) -> Any:
        """An ``openai.types.Completion`` (needs the openai package)."""
        from openai.types import Completion as OpenAICompletion

        return OpenAICompletion.construct(**self.to_dict())


# ------------------------------------------------------------- non-stream bodies (E34)

_TOP_KEYS = frozenset(
    {"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"}
)


def _pop_extra(d: JSONDict, known: frozenset[str]) -> JSONDict | None:
    extra = {k: v for k, v in d.items() if k not in known}
    return extra or None


_MSG_KEYS = frozenset(ChatMessage.__struct_fields__) - {"extra"}
_TOOL_KEYS = frozenset({"id", "type", "function", "index"})
_FN_KEYS = frozenset({"name", "arguments"})
_CHOICE_KEYS = frozenset({"index", "message", "finish_reason", "logprobs", "text"})


def _fn_from(d: Any) -> FunctionCall:
    d = d if isinstance(d, dict) else {}
    return FunctionCall(
        name=d.get("name"), arguments=d.get("arguments") or "", extra=_pop_extra(d, _FN_KEYS)
    )


def completion_from_dict(d: JSONDict) -> ChatCompletion | TextCompletion:
    """Build a result from a whole non-stream ``chat.completion`` / ``text_completion``.

    Keys this module does not model are kept in ``extra`` so ``to_dict()`` round-trips.
    """
    top: dict[str, Any] = {
        "id": d.get("id"),
        "created": d.get("created"),
        "model": d.get("model"),
        "usage": d.get("usage"),
        "system_fingerprint": d.get("system_fingerprint"),
        "extra": _pop_extra(d, _TOP_KEYS),
        "outcome": StreamOutcome(done=True, streamed=False, chunks=0, events=0),
    }
    if "service_tier" in d:
        top["service_tier"] = d["service_tier"]
    raw_choices = [c for c in (d.get("choices") or []) if isinstance(c, dict)]
    if d.get("object") == "text_completion":
        return TextCompletion(
            choices=[
                TextChoice(
                    index=c.get("index", i),
                    text=c.get("text") or "",
                    finish_reason=c.get("finish_reason"),
                    logprobs=c.get("logprobs"),
                    extra=_pop_extra(c, _CHOICE_KEYS),
                )
                for i, c in enumerate(raw_choices)
            ],
            **top,
        )
    choices = []
    for i, c in enumerate(raw_choices):
        m_raw = c.get("message")
        m: JSONDict = m_raw if isinstance(m_raw, dict) else {}
        msg = ChatMessage(
            role=m.get("role"),
            content=m.get("content"),
            refusal=m.get("refusal"),
            extra=_pop_extra(m, _MSG_KEYS),
        )
        if isinstance(m.get("tool_calls"), list):
            msg.tool_calls = [
                ToolCall(
                    id=t.get("id"),
                    type=t.get("type") or "function",
                    function=_fn_from(t["function"]) if "function" in t else None,
                    index=t["index"] if isinstance(t.get("index"), int) else UNSET,
                    extra=_pop_extra(t, _TOOL_KEYS),
                )
                for t in m["tool_calls"]
                if isinstance(t, dict)
            ]
        if isinstance(m.get("function_call"), dict):
            msg.function_call = _fn_from(m["function_call"])
        for key in ("audio", "annotations", "reasoning_content", "reasoning"):
            if key in m:
                setattr(msg, key, m[key])
        choices.append(
            ChatChoice(
                index=c.get("index", i),
                message=msg,
                finish_reason=c.get("finish_reason"),
                logprobs=c.get("logprobs"),
                extra=_pop_extra(c, _CHOICE_KEYS),
            )
        )
    return ChatCompletion(object=d.get("object") or "chat.completion", choices=choices, **top)
