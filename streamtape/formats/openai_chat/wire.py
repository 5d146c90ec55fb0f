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


_ChoiceExtras = tuple[
    JSONDict | None, JSONDict | None, JSONDict | None, list[tuple[JSONDict | None, JSONDict | None]]
]


def _split_choice(ch: JSONDict) -> _ChoiceExtras:
    """Pull the unknown keys out of one raw choice: (choice, delta, function_call, tools)."""
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
    return cex, dex, fcx, tex


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
        raw = json.loads(payload.decode("utf-8-sig", errors="replace"))
        used_json = True
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    # Pull extras out level by level (convert() would refuse them), remembering them
    # in order so they can be put back on the converted Structs.
    top = _split(raw, Chunk)
    choices = raw.get("choices")
    levels = [
        _split_choice(ch)
        for ch in (choices if isinstance(choices, list) else ())
        if isinstance(ch, dict)
    ]
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
