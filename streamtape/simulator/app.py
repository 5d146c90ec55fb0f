"""A simulated OpenAI-compatible upstream, so demos and tests need no API key and no network.

`DemoUpstream` is a plain ASGI app: deterministic (the same request body streams the
same bytes with the same gaps), paced like a real model (time to first token, jittered
gaps between tokens), and able to misbehave on request (header ``x-demo-fault``) the
way real servers and gateways do, so the recorder and the assembler can be tested
against real sockets instead of mocks. `UpstreamServer` runs it on loopback.

Routes (all under ``/v1``, all need ``authorization: Bearer <any key>``) are listed in
`DemoUpstream.routes`, one line each; the handlers live in `chat`, `completions` and
`endpoints`, the plumbing in `asgi`, the gate and the faults in `routing`. Anthropic's
``POST messages`` has its own auth (``x-api-key`` or Bearer) and error shape: `anthropic`.
Magic words in the last user message: ``demo:refuse`` (a refusal); in a moderation
input: ``demo:flag`` (flagged).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from typing import Any

from streamtape.core.faults import Event
from streamtape.simulator import anthropic, chat, completions, endpoints, responses
from streamtape.simulator.asgi import (
    GZIP_HEADER,
    HTTPError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    StreamInterrupts,
    json_response,
    read_request,
    send_stream,
    send_whole,
)
from streamtape.simulator.routing import (
    FAULT_HEADER,
    FAULTS,
    Call,
    Route,
    parse_faults,
    route,
    with_faults,
)
from streamtape.simulator.runner import LoopbackServer
from streamtape.simulator.synth import ident

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "GZIP_HEADER",
    "DemoUpstream",
    "UpstreamServer",
]


class DemoUpstream:
    """An ASGI app that answers like the OpenAI API, deterministically, with realistic pacing.

    `speed` divides every delay (`math.inf`: no delays). `max_tokens_cap` bounds how long
    a reply can get. A task created on ``POST /v1/tasks`` succeeds on poll `task_polls`.
    """

    def __init__(
        self, *, speed: float = 1.0, max_tokens_cap: int = 4096, task_polls: int = 3
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (use math.inf for no delays), got {speed!r}")
        if max_tokens_cap < 1 or task_polls < 1:
            raise ValueError("max_tokens_cap and task_polls must be >= 1")
        self.speed = float(speed)
        self.max_tokens_cap = max_tokens_cap
        self.task_polls = task_polls
        self._files = endpoints.FileStore()
        self._tasks = endpoints.TaskQueue()
        self._interrupts = StreamInterrupts()
        self.routes: list[Route] = [
            Route("POST", "/v1/chat/completions", self._chat),
            Route("POST", "/v1/completions", self._completions),
            Route("POST", "/v1/embeddings", endpoints.embeddings),
            Route("GET", "/v1/models", endpoints.list_models),
            Route("GET", "/v1/models/{id:path}", endpoints.get_model),
            Route("POST", "/v1/moderations", endpoints.moderations),
            Route("POST", "/v1/images/generations", endpoints.images),
            Route("POST", "/v1/audio/speech", endpoints.speech),
            Route("POST", "/v1/audio/transcriptions", endpoints.transcription),
            Route("POST", "/v1/files", self._files.upload),
            Route("GET", "/v1/files", self._files.listing),
            Route("*", "/v1/files/{id}", self._files.file),
            Route("*", "/v1/files/{id}/content", self._files.content),
            Route("POST", "/v1/tasks", self._tasks.create),
            Route("GET", "/v1/tasks/{id}", self._poll_task),
            Route("POST", "/v1/responses", self._responses),
        ]
        """Tried in order, the first match answers; add a route with one line here."""

    # -- public ---------------------------------------------------------------------------------

    def plan(
        self, request: Mapping[str, Any], *, fault: str | Iterable[str] | None = None
    ) -> list[Event]:
        """The exact events a streaming request gets, each with the delay before it.

        Delays are in seconds, already divided by `speed`; the first is measured from the
        arrival of the request (the response headers go out with the first event). The
        endpoint is chosen by the body: ``messages`` means chat, ``prompt`` text completions.
        A `stall` or `drop` plan lists the events sent before the connection hangs or closes.
        """
        body = dict(request)
        try:
            faults = parse_faults(fault)
            if "messages" in body:
                events, seed = chat.chat_events(body, self.max_tokens_cap)
            elif "prompt" in body:
                events, seed = completions.completion_events(body, self.max_tokens_cap)
            else:
                raise ValueError("plan() needs a chat (messages) or text completion (prompt) body")
        except HTTPError as exc:  # the same message the server would answer with
            raise ValueError(str(exc)) from None
        events, _ = with_faults(events, seed, faults)
        return [(self._scale(d), data) for d, data in events]

    def interrupt_streams(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make every stream served on `loop` stop at once (server shutdown)."""
        self._interrupts.interrupt(loop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets are not served
        request = await read_request(scope, receive)
        if request is None:
            return
        try:
            response = self._handle(request)
        except HTTPError as exc:
            response = json_response(exc.body, exc.status, exc.headers)
        request_id = ident("req_", 24, request.method, request.path, request.body)
        extra = [("x-request-id", request_id), ("openai-version", "2020-10-01")]
        if response.stream is None:
            await send_whole(send, request, response, extra)
        else:
            interrupted = self._interrupts.current()
            await send_stream(
                send, receive, response, extra, scale=self._scale, interrupted=interrupted
            )

    # -- internals ------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/v1/messages":  # Anthropic: its own auth and errors
            return anthropic.messages(self, request)
        return route(self.routes, request)

    # The handlers that depend on the app's settings (read per request, as before).

    def _chat(self, call: Call) -> Response:
        return chat.respond(call, self.max_tokens_cap)

    def _completions(self, call: Call) -> Response:
        return completions.respond(call, self.max_tokens_cap)

    def _responses(self, call: Call) -> Response:
        return responses.responses_reply(call.json(), call.faults, self.max_tokens_cap)

    def _poll_task(self, call: Call) -> Response:
        return self._tasks.poll(call, self.task_polls, self.max_tokens_cap)

    def _scale(self, delay: float) -> float:
        return 0.0 if math.isinf(self.speed) else delay / self.speed


class UpstreamServer(LoopbackServer):
    """Serve a `DemoUpstream` on a free loopback port in a background thread.

    Use as a context manager; `base_url` is what an OpenAI client takes. Exiting stops
    every open stream (even a stalled one) and the server within a fraction of a second.
    """

    def __init__(
        self,
        app: DemoUpstream | None = None,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app: DemoUpstream = app if app is not None else DemoUpstream(speed=speed)
        super().__init__(
            self.app,
            host=host,
            port=port,
            startup_timeout=startup_timeout,
            on_stop=self.app.interrupt_streams,
            name="streamtape-upstream",
        )
