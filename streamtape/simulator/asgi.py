"""The simulator's ASGI plumbing: one request in, one whole or paced streamed body out.

`read_request` collects the request; `send_whole` answers with one body (gzipped on
request); `send_stream` sends a schedule of events on deadlines and stops as soon as
the client leaves or the server shuts down (`StreamInterrupts`). A stream cut on
purpose returns without finishing the response, which makes uvicorn close the
connection; the log filter keeps uvicorn from reporting those as errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamtape.core.faults import Ending, Event
from streamtape.simulator.runner import abort_response
from streamtape.simulator.synth import dumps

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[str, str]]

GZIP_HEADER = "x-demo-gzip"
"""Request header that, set to ``1`` with ``accept-encoding: gzip``, gzips the response."""


class HTTPError(Exception):
    """An OpenAI-style error response, raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = list(headers)


Form = dict[str, tuple[str | None, bytes]]
"""The fields of a multipart body: name -> (filename, content)."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400 that says why not."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HTTPError(
                400, f"We could not parse the JSON body of your request: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        return data

    def form(self) -> Form:
        """The fields of a multipart/form-data body: name -> (filename, content)."""
        ctype = self.headers.get("content-type", "")
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/form-data") or match is None:
            raise HTTPError(400, "Expected a multipart/form-data body with a boundary.")
        fields: Form = {}
        for part in self.body.split(b"--" + match.group(1).encode())[1:]:
            if part.startswith(b"--"):
                break
            field_ = _form_field(part)
            if field_ is not None:
                fields[field_[0]] = field_[1]
        return fields


def _form_field(part: bytes) -> tuple[str, tuple[str | None, bytes]] | None:
    """One part of a multipart body as (name, (filename, content)); None if it has no name."""
    part = part.removeprefix(b"\r\n")
    head, sep, content = part.partition(b"\r\n\r\n")
    if not sep:
        return None
    content = content.removesuffix(b"\r\n")
    disposition = ""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            disposition = value
    name = re.search(r'\bname="([^"]*)"', disposition)
    filename = re.search(r'\bfilename="([^"]*)"', disposition)
    if name is None:
        return None
    return name.group(1), (filename.group(1) if filename else None, content)


@dataclass
class Response:
    """A whole body (`stream` is None) or a schedule of events and how it ends."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Headers = field(default_factory=list)
    stream: list[Event] | None = None
    ending: Ending = "complete"


def json_response(obj: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status=status, body=dumps(obj), headers=list(headers))


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client hung up before sending it.

    The simulator and both servers read requests this way.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_request(scope: Scope, receive: Receive) -> Request | None:
    """The whole request, or None if the client left before sending all of it."""
    body = await read_body(receive)
    if body is None:
        return None
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
    }
    return Request(scope["method"], scope["path"], headers, body)


def _start(status: int, headers: Headers) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }


async def send_whole(send: Send, request: Request, response: Response, extra: Headers) -> None:
    """Send `response.body` in one piece, gzipped if the request asked for it."""
    body = response.body
    headers = [("content-type", response.content_type), *extra, *response.headers]
    if (
        request.headers.get(GZIP_HEADER) == "1"
        and "gzip" in request.headers.get("accept-encoding", "")
        and body
    ):
        body = gzip.compress(body, mtime=0)
        headers.append(("content-encoding", "gzip"))
    headers.append(("content-length", str(len(body))))
    await send(_start(response.status, headers))
    await send({"type": "http.response.body", "body": body, "more_body": False})


class StreamInterrupts:
    """One event per server loop that, once set, stops every stream served on that loop."""

    def __init__(self) -> None:
        self._events: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self._lock = threading.Lock()

    def current(self) -> asyncio.Event:
        """The event of the running loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            event = self._events.get(loop)
            if event is None:
                event = self._events[loop] = asyncio.Event()
            return event

    def interrupt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop every stream on `loop` at once; callable from any thread."""
        with self._lock:
            event = self._events.pop(loop, None)
        if event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)


async def send_stream(
    send: Send,
    receive: Receive,
    response: Response,
    extra: Headers,
    *,
    scale: Callable[[float], float],
    interrupted: asyncio.Event,
) -> None:
    """Send `response.stream` event by event, each `scale(delay)` after the one before.

    Stops early when the client goes away or `interrupted` is set. The headers go out
    with the first event.
    """
    assert response.stream is not None
    headers = [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        *extra,
    ]
    start = _start(response.status, headers)
    disconnected = asyncio.ensure_future(_wait_disconnect(receive))
    stopped = asyncio.ensure_future(interrupted.wait())
    stoppers = {disconnected, stopped}
    try:
        started = False
        # Deadlines, not sleeps: a late wake-up shortens the next gap instead of drifting.
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        for delay, data in response.stream:
            deadline += scale(delay)
            remaining = deadline - loop.time()
            if remaining > 0:
                await asyncio.wait(stoppers, timeout=remaining)
            if disconnected.done() or stopped.done():
                abort_response()
                return
            if not started:
                await send(start)
                started = True
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if not started:
            await send(start)
        if response.ending == "complete":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if response.ending == "stall":
            await asyncio.wait(stoppers, return_when=asyncio.FIRST_COMPLETED)
        abort_response()  # returning without finishing makes uvicorn close the connection
    finally:
        for fut in stoppers:
            fut.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
