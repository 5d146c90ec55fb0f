"""msgspec types for the events of an Anthropic Messages stream (one SSE ``data:`` payload each).

The events form one union tagged by ``type``, so a whole stream decodes in a single
typed call. The types declare what the API sends and *forbid* other keys: any gateway
extra makes the fast decode fail loudly instead of dropping the key, and the payload
is then decoded by :func:`decode_event_lenient`, which keeps the unknown keys in the
``extra`` field of the level they came from, takes a missing ``type`` from the SSE
``event:`` name and reads the flat ``{"type": "error", "message": ...}`` shape.

The payloads that occur once per message or block (``message``, ``content_block``,
``message_delta``'s ``delta`` and ``usage``) stay plain dicts: they carry every key the
server sent, which is what the SDK's snapshot keeps too.
"""

from __future__ import annotations

from typing import Any, Union, cast

import msgspec

JSONDict = dict[str, Any]

# The JSON name the decoder would look for ``extra`` under: a key no server sends, so
# ``extra`` is only ever filled by the lenient path.
_EXTRA = msgspec.field(default=None, name="~streamtape.extra~")


class _Delta(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    extra: JSONDict | None = _EXTRA


# The three deltas that extend a block's text share the attribute ``value`` (each under
# its own JSON name), so the assembler's hot loop reads one attribute for all of them.


class TextDelta(_Delta, tag="text_delta"):
    value: str = msgspec.field(default="", name="text")

    @property
    def text(self) -> str:
        return self.value


class InputJsonDelta(_Delta, tag="input_json_delta"):
    value: str = msgspec.field(default="", name="partial_json")

    @property
    def partial_json(self) -> str:
        return self.value


class CitationsDelta(_Delta, tag="citations_delta"):
    citation: Any = None


class ThinkingDelta(_Delta, tag="thinking_delta"):
    value: str = msgspec.field(default="", name="thinking")

    @property
    def thinking(self) -> str:
        return self.value


class SignatureDelta(_Delta, tag="signature_delta"):
    signature: str = ""


class OtherDelta(msgspec.Struct, gc=False):
    """A delta type this module does not know (beta ``compaction_delta``...): not folded."""

    type: Any = None
    raw: JSONDict | None = None


Delta = Union[TextDelta, InputJsonDelta, CitationsDelta, ThinkingDelta, SignatureDelta]  # noqa: UP007


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    extra: JSONDict | None = _EXTRA


class MessageStart(_Event, tag="message_start"):
    message: JSONDict = msgspec.field(default_factory=dict)


class ContentBlockStart(_Event, tag="content_block_start"):
    index: int | None = None
    content_block: JSONDict = msgspec.field(default_factory=dict)


class ContentBlockDelta(_Event, tag="content_block_delta"):
    index: int | None = None
    delta: Delta | None = None
    """One of the `Delta` types; an `OtherDelta` when read leniently from an unknown type."""


class ContentBlockStop(_Event, tag="content_block_stop"):
    index: int | None = None


class MessageDelta(_Event, tag="message_delta"):
    delta: JSONDict | None = None
    usage: JSONDict | None = None


class MessageStop(_Event, tag="message_stop"):
    pass


class Ping(_Event, tag="ping"):
    pass


class ErrorEvent(_Event, tag="error"):
    """``{"type": "error", "error": {type, message}}``; the flat shape is read leniently."""

    error: Any = None


Event = Union[  # noqa: UP007 - runtime alias on 3.10
    ContentBlockDelta,
    ContentBlockStart,
    ContentBlockStop,
    MessageStart,
    MessageDelta,
    MessageStop,
    Ping,
    ErrorEvent,
]

EVENT_DECODER = msgspec.json.Decoder(Event)
"""Decodes one payload; raises on unknown keys or types (then use `decode_event_lenient`)."""
EVENTS_DECODER = msgspec.json.Decoder(list[Event])
"""Decodes a JSON array of payloads in one call: the fast path for whole streams."""

_EVENT_TYPES: dict[str, type[_Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        MessageStart,
        ContentBlockStart,
        ContentBlockDelta,
        ContentBlockStop,
        MessageDelta,
        MessageStop,
        Ping,
        ErrorEvent,
    )
}
_DELTA_TYPES: dict[str, type[_Delta]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (TextDelta, InputJsonDelta, CitationsDelta, ThinkingDelta, SignatureDelta)
}
EVENT_TYPES = frozenset(_EVENT_TYPES)
"""Every event ``type`` this module folds."""


def _fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """The JSON names ``cls`` decodes (``extra`` is never one)."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(cls) if f.name != "extra")


def _split(obj: JSONDict, known: frozenset[str]) -> JSONDict | None:
    """Move the keys not in ``known`` (nor ``type``) out of ``obj``; return them (or None)."""
    extra = {k: obj.pop(k) for k in [k for k in obj if k not in known and k != "type"]}
    return extra or None


class LenientEvent(msgspec.Struct, gc=False):
    """What `decode_event_lenient` read: the event (None when not one), and what was odd."""

    event: _Event | None
    type: str | None
    missing_type: bool = False


def _delta_of(raw: Any) -> _Delta | OtherDelta | None:
    if not isinstance(raw, dict):
        return None
    cls = _DELTA_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if cls is None:
        return OtherDelta(type=raw.get("type"), raw=raw)
    extra = _split(raw, _fields(cls))
    out = msgspec.convert(raw, cls)
    out.extra = extra
    return out


def decode_event_lenient(payload: bytes, event: str | None) -> LenientEvent:
    """Decode a payload the strict decoder refused.

    ``event`` is the SSE ``event:`` name (None for a data-only stream): it supplies a
    missing ``type``, and ``event: error`` makes the payload an error whatever it holds.
    Unknown keys go to ``extra``; an unknown ``type`` gives ``event=None``. Raises
    ``msgspec.DecodeError`` for invalid JSON and ``msgspec.ValidationError`` (or
    ``ValueError``) for JSON that is not such an event.
    """
    raw: Any = msgspec.json.decode(payload)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    kind = raw.get("type")
    missing = not isinstance(kind, str)
    if missing:
        kind = event if event and event != "message" else ("error" if raw.get("error") else None)
    if event == "error" or kind == "error":
        err = raw.get("error")
        if not err:  # the flat shape: the payload itself, less its type
            err = {k: v for k, v in raw.items() if k != "type"} or payload.decode(errors="replace")
        return LenientEvent(ErrorEvent(error=err), "error", missing)
    cls = _EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        return LenientEvent(None, kind if isinstance(kind, str) else None, missing)
    delta = raw.pop("delta", None) if cls is ContentBlockDelta else None
    extra = _split(raw, _fields(cls))
    raw["type"] = kind
    out = msgspec.convert(raw, cls)
    if cls is ContentBlockDelta:
        out.delta = cast(Any, _delta_of(delta))  # type: ignore[attr-defined]
    out.extra = extra
    return LenientEvent(out, kind, missing)
