"""The reassembled chat and text completion objects, OpenAI-shaped by `to_dict()`.

They keep unknown keys in ``extra`` and a status record in ``outcome``; ``to_dict()``
gives the OpenAI-shaped dict (extras merged back, ``outcome`` left out).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from streamtape.formats.base import StreamOutcome
from streamtape.formats.openai_chat.wire import JSONDict


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
