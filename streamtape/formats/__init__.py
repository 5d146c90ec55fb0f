"""Meaning from bytes: which stream format an exchange holds, and its reassembled response."""

from __future__ import annotations

from streamtape.formats.anthropic_messages import Message, summarize_messages
from streamtape.formats.openai_chat.assembler import Assembler, Completion, assemble
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.formats.openai_chat.summarize import summarize_chat, summarize_text
from streamtape.formats.summary import Summary, register_summarizer, summarize

register_summarizer(ChatCompletion, summarize_chat)
register_summarizer(TextCompletion, summarize_text)
register_summarizer(Message, summarize_messages)

__all__ = ["Assembler", "Completion", "Summary", "assemble", "summarize"]
