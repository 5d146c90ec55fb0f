"""The small ASGI vocabulary both servers share: types, the request, headers, hang-ups.

Why here: the proxy and the replay server read the request the same way, drop the
same hop-by-hop headers (RFC 9110 section 7.6.1) and notice a client that hangs up
the same way, so each of those lives once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from streamtape.core.exchange import Headers, RecordedRequest
from streamtape.simulator.asgi import read_body as read_body  # one reader for all apps

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one connection, not the message, so no proxy may forward them."""


def end_to_end(headers: Headers, *, drop: frozenset[str] = frozenset()) -> Headers:
    """``headers`` without the hop-by-hop ones, those ``Connection`` names, and ``drop``."""
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(","))
    gone = HOP_BY_HOP | named | drop
    return [(name, value) for name, value in headers if name.lower() not in gone]


def scope_headers(scope: Scope) -> Headers:
    """The request headers as text pairs (latin-1, as HTTP/1.1 allows)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]


def encode_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def target(scope: Scope) -> str:
    """The request target as sent: raw path (still percent-encoded) and query."""
    raw = scope.get("raw_path")
    # Mounted under a prefix, the path within the mount; otherwise the bytes as sent.
    mounted = bool(scope.get("root_path"))
    path = raw.decode("latin-1") if raw and not mounted else scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def request_of(scope: Scope, body: bytes) -> RecordedRequest:
    """The request as a ``RecordedRequest`` with an absolute URL (host from ``Host``)."""
    headers = scope_headers(scope)
    host = next((v for k, v in headers if k.lower() == "host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    url = f"{scope.get('scheme', 'http')}://{host}{target(scope)}"
    return RecordedRequest(method=scope["method"], url=url, headers=headers, body=body)


def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> asyncio.Task[None]:
    """A task that calls ``on_disconnect`` when the client hangs up; cancel it when done.

    It only waits (no polling), so an idle stream costs memory, not CPU. Servers also
    report ``http.disconnect`` once the response is complete; cancel the watcher first.
    """

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        on_disconnect()

    return asyncio.ensure_future(watch())


async def lifespan(
    receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Answer the lifespan protocol; ``on_shutdown`` runs on the loop once requests are done."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """A whole response in two messages."""
    await send(
        {"type": "http.response.start", "status": status, "headers": encode_headers(headers)}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
