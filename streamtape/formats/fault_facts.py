"""What a replay fault needs to know about a stream's format: tokens, error event, error body.

The fault plan in ``streamtape.core.fault_plan`` is format-neutral; this answers its
three questions for each dialect. A *token* is one event that carries generated
text (a chat or text completion chunk with content, a ``response.output_text.delta``,
an Anthropic ``text_delta``), since the APIs stream about one token per event. The
error event and the error bodies are the shapes each API really sends, so an SDK
raises the same exception it raises in production.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from streamtape.core.exchange import Exchange, Headers
from streamtape.core.sse import parse_sse
from streamtape.formats.detect import (
    ANTHROPIC_MESSAGES,
    OPENAI_RESPONSES,
    OPENAI_TEXT,
    detect,
    format_of_path,
)

__all__ = ["FormatFacts", "fault_facts"]

_SORRY = "The server had an error while processing your request. Sorry about that!"
_OPENAI_MESSAGES = {
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (_SORRY, "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
_ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def _has_text(fmt: str | None, event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    if fmt == OPENAI_RESPONSES:
        return event.get("type") == "response.output_text.delta" and bool(event.get("delta"))
    if fmt == ANTHROPIC_MESSAGES:
        delta = event.get("delta")
        return (
            event.get("type") == "content_block_delta"
            and isinstance(delta, dict)
            and bool(delta.get("text"))
        )
    choices = event.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if (fmt == OPENAI_TEXT or "text" in choice) and choice.get("text"):
            return True
        if isinstance(delta, dict) and delta.get("content"):
            return True
    return False


def _sse(event: str | None, payload: dict[str, Any]) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + msgspec.json.encode(payload) + b"\n\n"


def _retry_headers(retry_after: float | None) -> Headers:
    if retry_after is None:
        return []
    return [
        ("retry-after", str(max(0, math.ceil(retry_after)))),
        ("retry-after-ms", str(round(retry_after * 1000))),
    ]


class FormatFacts:
    """The fault plan's `StreamFacts` for one format (None: OpenAI-compatible)."""

    def __init__(self, fmt: str | None) -> None:
        self.format = fmt

    def token_end(self, body: bytes, n: int) -> int | None:
        count = 0
        for event in parse_sse(body):
            if not event.complete:
                break
            try:
                data = msgspec.json.decode(event.data)
            except msgspec.DecodeError:
                continue
            if _has_text(self.format, data):
                count += 1
                if count == n:
                    crlf = body[event.end - 1 : event.end + 1] == b"\r\n"
                    return event.end + 1 if crlf else event.end
        return None

    def error_event(self, index: int) -> bytes:
        if self.format == ANTHROPIC_MESSAGES:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            return _sse("error", {"type": "error", "error": error})
        message = _SORRY
        if self.format == OPENAI_RESPONSES:
            payload = {
                "type": "error",
                "code": "server_error",
                "message": message,
                "param": None,
                "sequence_number": index,
            }
            return _sse("error", payload)
        body: dict[str, Any] = {"message": message, "type": "server_error", "param": None}
        body["code"] = None
        return _sse(None, {"error": body})

    def error_reply(self, status: int, retry_after: float | None) -> tuple[Headers, bytes]:
        headers: Headers = [("content-type", "application/json"), *_retry_headers(retry_after)]
        if self.format == ANTHROPIC_MESSAGES:
            kind, message = _ANTHROPIC_ERRORS.get(status, ("api_error", f"HTTP {status}"))
            body = {"type": "error", "error": {"type": kind, "message": message}}
            return [*headers, ("request-id", "req_streamtape_fault")], msgspec.json.encode(body)
        message, kind, code = _OPENAI_MESSAGES.get(status, (f"HTTP {status}", "server_error", None))
        error = {"message": message, "type": kind, "param": None, "code": code}
        return [*headers, ("x-request-id", "req_streamtape_fault")], msgspec.json.encode(
            {"error": error}
        )


def fault_facts(source: Exchange | str) -> FormatFacts:
    """The facts for a recorded exchange (path, then first event) or a request URL."""
    fmt = detect(source) if isinstance(source, Exchange) else format_of_path(source)
    return FormatFacts(fmt)
