"""msgspec types for one Responses API stream event (the ``data:`` payload of one SSE event).

One flat ``Event`` struct declares every event-level key the API sends across its
59 event types; the nested objects (``response``, ``item``, ``part``, ``annotation``)
stay plain dicts, so whatever a newer API or a gateway puts inside them survives
untouched. ``Event`` forbids unknown *event-level* keys: a whole stream then decodes
in one typed call when it holds nothing unusual, and anything else goes through
:func:`decode_event_lenient`, which keeps the unknown keys (and values of a type the
struct does not expect) in ``extra`` instead of dropping them.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

JSONDict = dict[str, Any]

# A JSON name no server sends: ``extra`` is only ever filled by the lenient path.
_EXTRA = msgspec.field(default=None, name="~streamtape.extra~")


class EventCore(msgspec.Struct, gc=False):
    """The keys of an event that the assembler reads; any other key is skipped unread.

    The fast path decodes whole streams into this lean view: the keys it leaves out
    (``sequence_number``, delta ``logprobs``, ``obfuscation``...) never reach the
    response object, so skipping them costs nothing but time saved. Declared in the
    order the API sends keys (msgspec looks the next one up first).
    """

    type: str
    item_id: str | None = None
    output_index: int | None = None
    content_index: int | None = None
    delta: str | JSONDict | None = None
    """Text of a ``*.delta`` event; ``{stdout, stderr}`` for shell output deltas."""
    summary_index: int | None = None
    annotation_index: int | None = None
    command_index: int | None = None
    text: str | None = None
    refusal: str | None = None
    arguments: str | None = None
    input: str | None = None
    code: str | None = None
    """``code_interpreter_call_code.done``'s code, or a flat error's code."""
    command: str | None = None
    message: str | None = None
    param: str | None = None
    part: JSONDict | None = None
    item: JSONDict | None = None
    response: JSONDict | None = None
    annotation: JSONDict | None = None
    output: list[Any] | None = None
    error: Any = None
    extra: JSONDict | None = _EXTRA


class Event(EventCore, forbid_unknown_fields=True, gc=False):
    """One Responses stream event, every key the API defines; ``type`` says which are set.

    Unknown keys make strict decoding fail, so they are never silently dropped: the
    lenient path keeps them in ``extra``.
    """

    sequence_number: int | None = None
    logprobs: list[Any] | None = None
    obfuscation: str | None = None
    name: str | None = None
    status: str | None = None
    partial_image_index: int | None = None
    partial_image_b64: str | None = None


EVENT_DECODER = msgspec.json.Decoder(Event)
"""Decodes one payload; raises on unknown keys (then use :func:`decode_event_lenient`)."""
EVENTS_DECODER = msgspec.json.Decoder(list[EventCore])
"""Decodes a whole stream's payloads joined as a JSON array: the fast path."""

_INT = (int,)
_STR = (str,)
_DICT = (dict,)
# The Python types each field accepts on the lenient path (bool is not an int here).
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "sequence_number": _INT,
    "output_index": _INT,
    "content_index": _INT,
    "summary_index": _INT,
    "annotation_index": _INT,
    "command_index": _INT,
    "partial_image_index": _INT,
    "delta": (str, dict),
    "text": _STR,
    "refusal": _STR,
    "arguments": _STR,
    "input": _STR,
    "code": _STR,
    "command": _STR,
    "name": _STR,
    "message": _STR,
    "param": _STR,
    "status": _STR,
    "item_id": _STR,
    "obfuscation": _STR,
    "partial_image_b64": _STR,
    "part": _DICT,
    "item": _DICT,
    "response": _DICT,
    "annotation": _DICT,
    "output": (list,),
    "logprobs": (list,),
}


class NotAnEvent(ValueError):
    """The payload is JSON but not an object, so it cannot be an event."""


def decode_event_lenient(payload: bytes, event_name: str | None) -> tuple[Event, bool]:
    """Decode a payload the strict decoder refused.

    A missing ``type`` is taken from the SSE ``event:`` name (``event_name``; None or
    ``"message"`` when there was none, which gives ``type == ""``). Unknown keys and
    values of an unexpected type go to ``extra``. JSON msgspec rejects but Python's
    ``json`` accepts (NaN, lone surrogates, a BOM) is read with ``json.loads``.
    Returns the event and whether that fallback was needed. Raises ``ValueError`` or
    a msgspec error when the payload is not JSON, ``NotAnEvent`` when not an object.
    """
    used_json = False
    try:
        raw: Any = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raw = json.loads(payload.decode("utf-8-sig", errors="surrogateescape"))
        used_json = True
    if not isinstance(raw, dict):
        raise NotAnEvent(f"expected a JSON object, got {type(raw).__name__}")
    etype = raw.pop("type", None)
    extra: JSONDict = {}
    if not isinstance(etype, str):
        if etype is not None:
            extra["type"] = etype
        etype = event_name if event_name and event_name != "message" else ""
    fields: JSONDict = {}
    for key, value in raw.items():
        accepts = _ACCEPTS.get(key)
        if key == "error":
            fields[key] = value
        elif accepts is None or not (
            value is None or (isinstance(value, accepts) and not isinstance(value, bool))
        ):
            extra[key] = value
        else:
            fields[key] = value
    return Event(type=etype, extra=extra or None, **fields), used_json
