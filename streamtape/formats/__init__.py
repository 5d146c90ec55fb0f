"""Meaning from bytes: which stream format an exchange holds, and its reassembled response.

`assemble` picks the format (`detect`: the request path, else the first event) and
hands the bytes to that format's assembler; `summarize` maps any result to the one
neutral `Summary`; `stream_finished` tells the recorder whether a body had ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

from streamtape.errors import AssemblyError
from streamtape.formats import anthropic_messages, openai_responses
from streamtape.formats.anthropic_messages import Message, summarize_messages
from streamtape.formats.base import Problem, Source, body_and_reads
from streamtape.formats.detect import (
    ANTHROPIC_MESSAGES,
    FORMATS,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    OPENAI_TEXT,
    detect,
    format_of,
)
from streamtape.formats.openai_chat import whole as openai_chat
from streamtape.formats.openai_chat.assembler import Assembler, Completion
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.formats.openai_chat.summarize import summarize_chat, summarize_text
from streamtape.formats.openai_responses import Response, summarize_responses
from streamtape.formats.summary import Summary, register_summarizer, summarize

register_summarizer(ChatCompletion, summarize_chat)
register_summarizer(TextCompletion, summarize_text)
register_summarizer(Message, summarize_messages)
register_summarizer(Response, summarize_responses)

__all__ = [
    "FORMATS",
    "Assembler",
    "Completion",
    "Result",
    "Summary",
    "assemble",
    "detect",
    "stream_finished",
    "summarize",
]

Result = Union[ChatCompletion, TextCompletion, Response, Message]  # noqa: UP007 - 3.10 alias
"""What `assemble` returns: the format's own response object."""

_ASSEMBLERS: dict[str, Callable[[Any], Any]] = {
    OPENAI_CHAT: openai_chat.assemble,
    OPENAI_TEXT: openai_chat.assemble,
    OPENAI_RESPONSES: openai_responses.assemble,
    ANTHROPIC_MESSAGES: anthropic_messages.assemble,
}
_FINISHED = (
    openai_chat.stream_finished,
    openai_responses.stream_finished,
    anthropic_messages.stream_finished,
)


def assemble(source: Source, *, format: str | None = None) -> Result:
    """Reassemble a response: SSE body bytes, an iterable of reads, or an Exchange.

    The format comes from the exchange's request path when it has one, else from the
    first event; ``format=`` forces one of `FORMATS`. A body no format recognises goes
    to the chat assembler (OpenAI-compatible servers are the common case), and its
    ``outcome`` names what it saw with an ``unknown_format`` problem. Never raises for
    bad bytes; raises `AssemblyError` only for a ``format`` name it does not know.
    """
    parts = body_and_reads(source)  # joined once; every later step takes these parts
    body, exchange = parts.body, parts.exchange
    if format is not None:
        chosen = _ASSEMBLERS.get(format)
        if chosen is None:
            raise AssemblyError(
                f"unknown stream format {format!r}; expected one of: {', '.join(FORMATS)}"
            )
        result: Result = chosen(parts)
        return result
    name = format_of(exchange.request.url if exchange is not None else None, body)
    result = _ASSEMBLERS[name or OPENAI_CHAT](parts)
    if name is None and not result.outcome.ok:
        seen = body[:80].decode("utf-8", "replace") if body else "an empty body"
        result.outcome.problems.append(
            Problem(
                kind="unknown_format",
                message=f"no stream format recognised; read as chat completions; saw {seen!r}",
                offset=0,
            )
        )
    return result


def stream_finished(body: bytes) -> bool:
    """Whether a response body ends with its stream format's last event.

    The recorder asks this when a client closes the body early: SDKs stop reading at
    ``data: [DONE]`` (chat, text), ``response.completed`` (Responses) or
    ``message_stop`` (Anthropic), so such an exchange is complete, not cut.
    """
    return any(check(body) for check in _FINISHED)
