"""Meaning from bytes: which stream format an exchange holds, and its reassembled response."""

from __future__ import annotations

from streamtape.formats import anthropic_messages
from streamtape.formats.anthropic_messages import Message, summarize_messages
from streamtape.formats.openai_chat import whole as openai_chat
from streamtape.formats.openai_chat.assembler import Assembler, Completion
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.formats.openai_chat.summarize import summarize_chat, summarize_text
from streamtape.formats.openai_chat.whole import assemble
from streamtape.formats.summary import Summary, register_summarizer, summarize

register_summarizer(ChatCompletion, summarize_chat)
register_summarizer(TextCompletion, summarize_text)
register_summarizer(Message, summarize_messages)

__all__ = ["Assembler", "Completion", "Summary", "assemble", "stream_finished", "summarize"]

_FINISHED = (openai_chat.stream_finished, anthropic_messages.stream_finished)


def stream_finished(body: bytes) -> bool:
    """Whether a response body ends with its stream format's last event.

    The recorder asks this when a client closes the body early: SDKs stop reading at
    ``data: [DONE]`` (chat, text), ``response.completed`` (Responses) or
    ``message_stop`` (Anthropic), so such an exchange is complete, not cut.
    """
    return any(check(body) for check in _FINISHED)
