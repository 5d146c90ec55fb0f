"""The reassembled Anthropic ``message``, shaped like the SDK's by `to_dict()`.

Every block and the message keep the keys this module does not model in ``extra``
(a tool block's ``caller``, a server tool result's ``content``...), and fields that
never appeared on the wire stay UNSET and out of `to_dict()`, as the SDK's
``exclude_unset`` leaves them out. ``outcome`` says how the stream ended; it is not
part of the Anthropic-shaped output.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from streamtape.formats.anthropic_messages.wire import JSONDict
from streamtape.formats.base import StreamOutcome

__all__ = [
    "ContentBlock",
    "Message",
    "OtherBlock",
    "RedactedThinkingBlock",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
]

TOOL_BLOCK_TYPES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Blocks whose ``input`` streams as ``input_json_delta`` (``mcp_tool_use`` is beta)."""


class ContentBlock(msgspec.Struct, kw_only=True):
    """Fields every block has: its ``type`` and the keys this module does not model."""

    type: str | None = None
    extra: JSONDict | None = None

    def _fields(self) -> JSONDict:
        return {}

    def to_dict(self) -> JSONDict:
        out: JSONDict = {"type": self.type, **self._fields()}
        if self.extra:
            out.update(self.extra)
        return out


class TextBlock(ContentBlock, kw_only=True):
    text: str = ""
    citations: list[Any] | UnsetType | None = UNSET

    def _fields(self) -> JSONDict:
        out: JSONDict = {"text": self.text}
        if self.citations is not UNSET:
            out["citations"] = self.citations
        return out


class ThinkingBlock(ContentBlock, kw_only=True):
    thinking: str = ""
    signature: str | UnsetType | None = UNSET

    def _fields(self) -> JSONDict:
        out: JSONDict = {"thinking": self.thinking}
        if self.signature is not UNSET:
            out["signature"] = self.signature
        return out


class RedactedThinkingBlock(ContentBlock, kw_only=True):
    data: Any = None

    def _fields(self) -> JSONDict:
        return {"data": self.data}


class ToolUseBlock(ContentBlock, kw_only=True):
    """A ``tool_use``, ``server_tool_use`` or ``mcp_tool_use`` block.

    ``input`` follows the SDK: the partial-JSON parse of everything streamed so far.
    ``input_json`` is that text exactly as streamed (None when no delta arrived);
    ``input_complete`` is False when it is not one whole JSON value (cut or invalid).
    """

    id: str | None = None
    name: str | None = None
    input: Any = UNSET
    """UNSET only when the block carried no ``input`` and no delta arrived."""
    input_json: str | None = None
    input_complete: bool = True

    def _fields(self) -> JSONDict:
        out: JSONDict = {"id": self.id, "name": self.name}
        if self.input is not UNSET:
            out["input"] = self.input
        return out


class OtherBlock(ContentBlock, kw_only=True):
    """A block that gets no deltas (server tool results, ``container_upload``...).

    Everything but its ``type`` is in ``extra``.
    """


class Message(msgspec.Struct, kw_only=True):
    """A reassembled (or non-stream) Anthropic ``message``."""

    id: str | None = None
    type: str | None = "message"
    role: str | None = "assistant"
    model: str | None = None
    content: list[ContentBlock] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stop_details: Any = UNSET
    container: Any = UNSET
    usage: JSONDict | None = None
    extra: JSONDict | None = None
    outcome: StreamOutcome = msgspec.field(default_factory=StreamOutcome)

    def to_dict(self) -> JSONDict:
        """The Anthropic-shaped plain dict (extras merged back, ``outcome`` left out)."""
        out: JSONDict = {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "model": self.model,
            "content": [b.to_dict() for b in self.content],
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": self.usage,
        }
        if self.stop_details is not UNSET:
            out["stop_details"] = self.stop_details
        if self.container is not UNSET:
            out["container"] = self.container
        if self.extra:
            out.update(self.extra)
        return out

    def to_json(self) -> bytes:
        """The JSON of :meth:`to_dict`."""
        return msgspec.json.encode(self.to_dict())

    def to_anthropic(self) -> Any:
        """An ``anthropic.types.Message`` (needs the anthropic package), built unvalidated
        so that partial results survive."""
        from anthropic.types import Message as AnthropicMessage

        return AnthropicMessage.construct(**self.to_dict())
