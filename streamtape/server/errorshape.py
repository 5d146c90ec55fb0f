"""Errors in the shape of the API the client speaks, so its SDK shows our message.

An OpenAI SDK reads ``{"error": {"message", "type", "param", "code"}}``; an Anthropic
SDK reads ``{"type": "error", "error": {"type", "message"}}``. A request is Anthropic's
when it goes to ``/v1/messages`` (or ``/v1/complete``) or carries ``anthropic-version``.
"""

from __future__ import annotations

import msgspec

from streamtape.core.exchange import Headers, first_header
from streamtape.server.asgi import Send, respond

_ANTHROPIC_PATHS = ("/v1/messages", "/v1/complete")
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def is_anthropic(path: str, headers: Headers) -> bool:
    """Whether the client speaks the Anthropic API (by path or by its version header)."""
    path = path.split("?", 1)[0].rstrip("/")
    if any(path.endswith(p) or f"{p}/" in path for p in _ANTHROPIC_PATHS):
        return True
    return first_header(headers, "anthropic-version") is not None


def error_body(path: str, headers: Headers, status: int, message: str, code: str) -> bytes:
    """The JSON error body an SDK of the client's API understands."""
    if is_anthropic(path, headers):
        kind = _ANTHROPIC_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        body: dict[str, object] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return msgspec.json.encode(body)


async def send_error(
    send: Send, path: str, headers: Headers, status: int, message: str, code: str
) -> None:
    """Answer with ``status`` and the API-shaped error; ``code`` names what happened."""
    body = error_body(path, headers, status, message, code)
    response_headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("x-streamtape-error", code),
    ]
    await respond(send, status, response_headers, body)
