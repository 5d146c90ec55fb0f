"""Anthropic Messages streams (``POST /v1/messages``): wire types, assembler, fast path, summary."""

from __future__ import annotations

from streamtape.formats.anthropic_messages.assembler import MessagesAssembler
from streamtape.formats.anthropic_messages.results import (
    ContentBlock,
    Message,
    OtherBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from streamtape.formats.anthropic_messages.summarize import FORMAT, summarize_messages
from streamtape.formats.anthropic_messages.whole import assemble, stream_finished

__all__ = [
    "FORMAT",
    "ContentBlock",
    "Message",
    "MessagesAssembler",
    "OtherBlock",
    "RedactedThinkingBlock",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "assemble",
    "stream_finished",
    "summarize_messages",
]
