"""Which stream format a response is: from the request path when there is one, else its bytes.

Gateways serve the three dialects on their usual paths, so the path decides first
(``/chat/completions`` and ``/completions``, ``/responses``, ``/messages``). A bare body
(bytes, reads) is recognised by its first event: ``chat.completion.chunk`` or
``text_completion`` objects, a ``response.*`` event, a ``message_start`` (or their
non-stream counterparts). Only the first few KiB are looked at.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from streamtape.core.exchange import Exchange

OPENAI_CHAT = "openai_chat"
OPENAI_TEXT = "openai_text"
OPENAI_RESPONSES = "openai_responses"
ANTHROPIC_MESSAGES = "anthropic_messages"
FORMATS = (OPENAI_CHAT, OPENAI_TEXT, OPENAI_RESPONSES, ANTHROPIC_MESSAGES)
"""Every name ``assemble(..., format=...)`` takes (chat and text share one assembler)."""

_HEAD_BYTES = 4096
_BY_BYTES = (
    (re.compile(rb'"type"\s*:\s*"response\.|^event:\s*response\.', re.M), OPENAI_RESPONSES),
    (
        re.compile(rb'"type"\s*:\s*"message_start"|^event:\s*message_start', re.M),
        ANTHROPIC_MESSAGES,
    ),
    (re.compile(rb'"object"\s*:\s*"(chat\.completion(\.chunk)?)"'), OPENAI_CHAT),
    (re.compile(rb'"object"\s*:\s*"text_completion"'), OPENAI_TEXT),
    (re.compile(rb'"object"\s*:\s*"response"'), OPENAI_RESPONSES),
    (re.compile(rb'"type"\s*:\s*"message"'), ANTHROPIC_MESSAGES),
    (re.compile(rb'"choices"\s*:'), OPENAI_CHAT),
)


def format_of_path(url: str) -> str | None:
    """The format a request path serves, or None for a path that says nothing."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith("/chat/completions"):
        return OPENAI_CHAT
    if path.endswith("/completions"):
        return OPENAI_TEXT
    if path.endswith("/responses"):
        return OPENAI_RESPONSES
    if path.endswith("/messages") and "/threads/" not in path:  # not OpenAI's assistants
        return ANTHROPIC_MESSAGES
    return None


def format_of_bytes(body: bytes) -> str | None:
    """The format the first event (or the whole JSON body) shows, or None."""
    head = body[:_HEAD_BYTES]
    found: list[tuple[int, str]] = []
    for pattern, name in _BY_BYTES:
        match = pattern.search(head)
        if match is not None:
            found.append((match.start(), name))
    if not found:
        return None
    return min(found)[1]  # the earliest sign wins: the first event's own


def format_of(url: str | None, body: bytes) -> str | None:
    """The format a request path says (when there is one), else the one the body shows."""
    by_path = format_of_path(url) if url is not None else None
    return by_path if by_path is not None else format_of_bytes(body)


def detect(source: Exchange | bytes) -> str | None:
    """The stream format of an exchange (by its path, then its body) or of body bytes."""
    if isinstance(source, Exchange):
        return format_of(source.request.url, source.body)
    return format_of(None, bytes(source))
