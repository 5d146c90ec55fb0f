"""The reassembled chat and text completion objects, OpenAI-shaped by `to_dict()`.

They keep unknown keys in ``extra`` and a status record in ``outcome``. One rule makes
every ``to_dict()``: the fields in declaration order, UNSET ones (never seen in the
stream) left out, the level's ``extra`` merged back, ``outcome`` never included.
`completion_from_dict` reads a whole non-stream body into the same types, typed by
msgspec, with the keys we do not model kept in ``extra`` level by level.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

import msgspec
from msgspec import UNSET, UnsetType
from msgspec import inspect as mi

from streamtape.formats.base import StreamOutcome, json_bytes
from streamtape.formats.openai_chat.wire import JSONDict


class _Plain(msgspec.Struct, kw_only=True):
    """Base of every result type: the one ``to_dict`` rule."""

    extra: JSONDict | None = None

    def to_dict(self) -> JSONDict:
        """The OpenAI-shaped plain dict (extras merged back, ``outcome`` left out)."""
        out: JSONDict = {}
        for name in self.__struct_fields__:
            if name in _NOT_OUTPUT:
                continue
            value = getattr(self, name)
            if value is not UNSET:
                out[name] = _plain(value)
        if self.extra:
            out.update(self.extra)
        return out


_NOT_OUTPUT = frozenset({"extra", "outcome"})


def _plain(value: Any) -> Any:
    if isinstance(value, _Plain):
        return value.to_dict()
    if isinstance(value, list) and value and isinstance(value[0], _Plain):
        return [_plain(v) for v in value]
    return value


class FunctionCall(_Plain, kw_only=True):
    """A complete ``function`` of a tool call, or a legacy ``function_call``."""

    name: str | None = None
    arguments: str = ""


class ToolCall(_Plain, kw_only=True):
    """A complete tool call. ``index`` is its position (streamed results only)."""

    index: int | UnsetType = UNSET
    id: str | None = None
    type: str = "function"
    function: FunctionCall | None = None


class ChatMessage(_Plain, kw_only=True):
    """The assistant message of one choice. UNSET fields never appeared in the stream."""

    role: str | None = "assistant"
    content: str | list[Any] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    function_call: FunctionCall | UnsetType = UNSET
    audio: JSONDict | UnsetType | None = UNSET
    annotations: list[Any] | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class ChatChoice(_Plain, kw_only=True):
    """One choice of a chat completion."""

    index: int
    message: ChatMessage
    finish_reason: str | None = None
    logprobs: JSONDict | None = None


class _Completion(_Plain, kw_only=True):
    """Fields and conversions shared by chat and text completions."""

    id: str | None = None
    object: str = ""
    created: int | float | None = None
    model: str | None = None
    choices: list[Any] = msgspec.field(default_factory=list)
    usage: JSONDict | None = None
    system_fingerprint: str | None = None
    service_tier: str | UnsetType | None = UNSET
    outcome: StreamOutcome = msgspec.field(default_factory=StreamOutcome)

    def to_json(self) -> bytes:
        """The OpenAI-shaped JSON of :meth:`to_dict` (lone surrogates become U+FFFD)."""
        return json_bytes(self.to_dict())


class ChatCompletion(_Completion, kw_only=True):
    """A reassembled (or non-stream) ``chat.completion``."""

    object: str = "chat.completion"
    choices: list[ChatChoice] = msgspec.field(default_factory=list)

    def to_openai(self) -> Any:
        """An ``openai.types.chat.ChatCompletion`` (needs the openai package).

        Built with ``construct`` so that partial results (no ``finish_reason`` yet) and
        provider extras survive where validation would reject them.
        """
        from openai.types.chat import ChatCompletion as OpenAIChatCompletion

        return OpenAIChatCompletion.construct(**self.to_dict())


class TextChoice(_Plain, kw_only=True):
    """One choice of a text completion."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    logprobs: JSONDict | None = None


class TextCompletion(_Completion, kw_only=True):
    """A reassembled (or non-stream) ``text_completion``."""

    object: str = "text_completion"
    choices: list[TextChoice] = msgspec.field(default_factory=list)

    def to_openai(self) -> Any:
        """An ``openai.types.Completion`` (needs the openai package)."""
        from openai.types import Completion as OpenAICompletion

        return OpenAICompletion.construct(**self.to_dict())


# ------------------------------------------------------------- non-stream bodies (E34)


@cache
def _schema(cls: type[_Plain]) -> dict[str, tuple[mi.Field, type[_Plain] | None, bool]]:
    """Per field of ``cls``: its msgspec info, the result type nested in it, and whether a list."""
    out: dict[str, tuple[mi.Field, type[_Plain] | None, bool]] = {}
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        nested: type[_Plain] | None = None
        many = False
        for t in field.type.types if isinstance(field.type, mi.UnionType) else (field.type,):
            if isinstance(t, mi.ListType) and isinstance(t.item_type, mi.StructType):
                nested, many = cast("type[_Plain]", t.item_type.cls), True
            elif isinstance(t, mi.StructType):
                nested = cast("type[_Plain]", t.cls)
        out[field.name] = (field, nested, many)
    return out


def _admits_none(field: mi.Field) -> bool:
    types = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
    return any(isinstance(t, mi.NoneType) for t in types)


def _typed(cls: type[_Plain], raw: JSONDict, position: int = 0) -> dict[str, Any]:
    """The fields of ``cls`` from a raw dict, nested results built, unknown keys in ``extra``.

    Gateways send ``null`` for fields that cannot be null (``text``, ``arguments``): the
    default stands in. An absent field that may be null is null, as the SDK reads it; a
    field that may be UNSET stays UNSET. A list entry's missing ``index`` is its position.
    """
    schema = _schema(cls)
    out: dict[str, Any] = {}
    extra: JSONDict = {}
    for key, value in raw.items():
        spec = schema.get(key)
        if spec is None or key in _NOT_OUTPUT:
            extra[key] = value
            continue
        field, nested, many = spec
        if value is None and not _admits_none(field):
            continue
        if nested is not None and many and isinstance(value, list):
            value = [
                msgspec.convert(_typed(nested, v, i), nested)
                for i, v in enumerate(x for x in value if isinstance(x, dict))
            ]
        elif nested is not None and isinstance(value, dict):
            value = msgspec.convert(_typed(nested, value), nested)
        elif nested is not None and value is not None:
            continue  # not the shape that field has: leave its default
        out[key] = value
    for name, (field, _, _) in schema.items():
        if name in out or name in _NOT_OUTPUT:
            continue
        if name == "index" and field.required:
            out[name] = position
        elif field.default is not msgspec.NODEFAULT and _admits_none(field):
            out[name] = None
    out["extra"] = extra or None
    return out


def completion_from_dict(d: JSONDict) -> ChatCompletion | TextCompletion:
    """Build a result from a whole non-stream ``chat.completion`` / ``text_completion``.

    Decoded typed by msgspec; keys this module does not model are kept in ``extra``
    so ``to_dict()`` round-trips. Raises ``msgspec.ValidationError`` for a body whose
    known fields have impossible types.
    """
    cls: type[ChatCompletion] | type[TextCompletion] = (
        TextCompletion if d.get("object") == "text_completion" else ChatCompletion
    )
    fields = _typed(cls, d)
    fields["outcome"] = StreamOutcome(done=True, streamed=False, chunks=0, events=0)
    return msgspec.convert(fields, cls)
