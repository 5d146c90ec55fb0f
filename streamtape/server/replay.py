"""The replay server: an ASGI app that answers from cassettes at the recorded pacing.

It matches like ``ReplayTransport`` (same ``Matcher`` options, requests redacted
before matching) over a ``Library`` of files and folders, and releases every read of
every stream from one ``PacingScheduler``. An unmatched request gets the error shape
of the API it speaks, naming the nearest recorded request and how it differs;
``GET /v1/models`` falls back to the models the recordings were asked for.

Record modes (the names vcrpy and our pytest plugin use), with ``upstream``:
``none`` replays only; ``once`` records everything when there was no recording yet
and otherwise replays only; ``new_episodes`` replays what is recorded and forwards
and records the rest; ``all`` forwards and records everything. Forwarding is the
recording proxy's, and what it records is answered from at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from streamtape.core.exchange import Exchange, Headers, Outcome, RecordedRequest
from streamtape.core.fault_plan import ActiveFaults, FaultPlan, Reply
from streamtape.core.match import Matcher
from streamtape.core.pacing import Clock, Pacing, schedule
from streamtape.core.redact import Redactor
from streamtape.errors import NoMatchError, ServerConfigError
from streamtape.server.asgi import (
    Receive,
    Scope,
    Send,
    encode_headers,
    end_to_end,
    lifespan,
    read_body,
    request_of,
    respond,
    scope_headers,
    target,
    watch_disconnect,
)
from streamtape.server.errorshape import is_anthropic, send_error
from streamtape.server.library import Library
from streamtape.server.proxy import RecordingProxy
from streamtape.server.scheduler import PacingScheduler
from streamtape.simulator.arrival import received_ns
from streamtape.simulator.runner import abort_response, drop_connection
from streamtape.transport.faulting import FaultedAnswers, replay_schedule

MODES = ("none", "once", "new_episodes", "all")
"""Record modes, as vcrpy names them."""

NO_MATCH = "streamtape_no_match"
"""The error ``code`` (and ``x-streamtape-error`` header) of an unmatched request."""


def record_target(paths: Iterable[str | os.PathLike[str]]) -> Path:
    """Where a server records by default: the first path, or ``recorded.tape`` in it."""
    first = next(iter(paths), None)
    if first is None:
        raise ServerConfigError("give at least one cassette file or folder")
    path = Path(first)
    return path / "recorded.tape" if path.is_dir() else path


_BROKEN = (Outcome.UPSTREAM_ERROR, Outcome.TIMEOUT)
"""Recorded endings that replay as a broken connection."""


def replay_headers(exchange: Exchange) -> Headers:
    """The recorded response headers a client may get: end-to-end, length only if true."""
    headers = end_to_end(exchange.response_headers)
    length = exchange.response_header("content-length")
    complete = exchange.outcome is Outcome.COMPLETE
    if length is not None and not (complete and length.strip() == str(len(exchange.body))):
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return headers


class ReplayServer:
    """Answers requests from the cassettes under ``paths``; an ASGI app.

    ``pacing`` is ``"original"``, ``"instant"`` or a speed; ``max_gap`` caps each gap
    (seconds); ``miss_status`` is the status of an unmatched request. ``upstream`` and
    ``mode`` turn on recording (see the module docstring) into ``record_to`` (default:
    the first path, or ``recorded.tape`` in that folder). ``match_options`` are
    ``ReplayTransport``'s. ``on_exchange`` sees each exchange recorded, ``on_miss`` each
    unmatched request with its message. ``faults`` are fault specs (``--fault``, the
    same spelling as ``ReplayTransport(faults=...)``), ``seed`` fixes their choices.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        pacing: str | float | Pacing = "original",
        max_gap: float | None = None,
        miss_status: int = 404,
        redact: object = None,
        upstream: str | None = None,
        mode: str = "none",
        record_to: str | os.PathLike[str] | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
        on_miss: Callable[[RecordedRequest, str], None] | None = None,
        clock: Clock = time.perf_counter_ns,
        faults: Any = None,
        seed: int = 0,
        **match_options: Any,
    ) -> None:
        paths = list(paths)
        if mode not in MODES:
            raise ServerConfigError(f"record mode {mode!r} is not one of {', '.join(MODES)}")
        if (mode == "none") != (upstream is None):
            raise ServerConfigError(
                f"--mode {mode} needs --upstream URL"
                if upstream is None
                else "--upstream needs a record mode: --mode once, new_episodes or all"
            )
        if not 100 <= miss_status <= 599:
            raise ServerConfigError(f"--miss-status {miss_status} is not an HTTP status")
        self.pacing = Pacing.parse(pacing)
        if max_gap is not None:
            self.pacing = dataclasses.replace(self.pacing, max_gap_s=max_gap)
        self.miss_status = miss_status
        self.redactor = Redactor.coerce(redact)
        target_path = Path(record_to) if record_to is not None else record_target(paths)
        named = {Path(p).resolve() for p in paths}
        if upstream is not None and target_path.is_file() and target_path.resolve() not in named:
            paths.append(target_path)  # what was recorded there before answers too
        self.library = Library(
            paths, may_be_missing=[target_path] if upstream else [], **match_options
        )
        self.mode = "none" if mode == "once" and len(self.library) else mode
        self.on_exchange = on_exchange
        self.on_miss = on_miss
        self.proxy: RecordingProxy | None = None
        if self.mode != "none":
            assert upstream is not None
            self.proxy = RecordingProxy(
                upstream, target_path, redact=self.redactor, on_exchange=self._recorded
            )
        self._clock = clock
        plan = FaultPlan.parse(faults, seed=seed)
        self.faults: FaultedAnswers | None = FaultedAnswers(plan) if plan else None
        """The fault plan (``--fault``) and what fired; None when no fault was asked for."""
        self._keys = Matcher([], **match_options)  # attempts at one request count together
        self._schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PacingScheduler] = (
            weakref.WeakKeyDictionary()
        )

    def _recorded(self, exchange: Exchange) -> None:
        self.library.add(exchange, used=True)
        if self.on_exchange is not None:
            self.on_exchange(exchange)

    def _scheduler(self) -> PacingScheduler:
        loop = asyncio.get_running_loop()
        scheduler = self._schedulers.get(loop)
        if scheduler is None:
            scheduler = self._schedulers[loop] = PacingScheduler(self._clock)
        return scheduler

    def _start_ns(self, scope: Scope) -> int:
        """Where this answer's recorded offsets count from: when the request was read.

        The runner's stamp is on ``perf_counter_ns``; a server clock of its own (a
        test's) counts from the call instead.
        """
        stamp = received_ns(scope) if self._clock is time.perf_counter_ns else None
        return self._clock() if stamp is None else stamp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self.proxy.aclose if self.proxy is not None else None)
            return
        if scope["type"] != "http":
            return
        t0 = self._start_ns(scope)
        body = await read_body(receive)
        if body is None:
            return
        if self.mode == "all":
            assert self.proxy is not None
            await self.proxy.forward(scope, body, receive, send)
            return
        sent, _ = self.redactor.redact_request(request_of(scope, body))
        active, label = self._faults_for(sent)
        if active is not None and self.faults is not None:
            early = self.faults.early(active, sent.url, label)
            if early is not None:  # a status or a dropped connection instead of the recording
                await self._guarded(self._send_reply(early, t0, receive, send))
                return
        try:
            if self.library.ready(sent.method, sent.url):
                exchange = self.library.match(sent)
            else:  # the first request of its kind decodes its group: off the loop
                exchange = await asyncio.to_thread(self.library.match, sent)
        except NoMatchError as exc:
            await self._miss(scope, body, receive, send, sent, str(exc))
            return
        if active is not None and self.faults is not None and exchange.status:
            planned = replay_schedule(exchange, self.pacing)
            reply = self.faults.apply(active, exchange, planned, label)
            await self._guarded(self._send_reply(reply, t0, receive, send, exchange))
            return
        await self._guarded(self._play(exchange, t0, receive, send))

    async def _guarded(self, playing: Awaitable[None]) -> None:
        try:
            await playing
        except asyncio.CancelledError:  # the server stopped past its grace period
            abort_response()

    def _faults_for(self, sent: RecordedRequest) -> tuple[ActiveFaults | None, str]:
        """The faults that hit this answer (counting it), and the request's label."""
        label = f"{sent.method} {urlsplit(sent.url).path}"
        if self.faults is None:
            return None, label
        key = self._keys.key(sent.method, sent.url, sent.headers, sent.body)
        return self.faults.begin(key), label

    async def _send_reply(
        self,
        reply: Reply,
        t0: int,
        receive: Receive,
        send: Send,
        exchange: Exchange | None = None,
    ) -> None:
        """Send a faulted answer on its deadlines, ending as the plan says."""
        if reply.end == "drop":  # the connection closes before any header
            if not drop_connection(send):
                abort_response()  # not uvicorn: the best left is an unfinished response
            return
        start = {
            "type": "http.response.start",
            "status": reply.status,
            "headers": encode_headers(end_to_end(reply.headers)),
        }
        left: list[bool] = []
        watcher = watch_disconnect(receive, lambda: left.append(True))
        until = self._scheduler().until
        try:
            await until(t0 + reply.headers_ns)
            await send(start)
            for read in reply.reads:
                await until(t0 + read.t_ns)
                if left:
                    return
                await send({"type": "http.response.body", "body": read.data, "more_body": True})
        finally:
            watcher.cancel()
        broken = exchange is not None and exchange.outcome in (
            Outcome.UPSTREAM_ERROR,
            Outcome.TIMEOUT,
        )
        if reply.end == "reset" or (reply.end == "recorded" and broken):
            abort_response()  # no terminating chunk: the client sees the connection break
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _miss(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        sent: RecordedRequest,
        why: str,
    ) -> None:
        if self.proxy is not None:
            await self.proxy.forward(scope, body, receive, send)
            return
        path = urlsplit(sent.url).path.rstrip("/")
        if sent.method == "GET" and path.endswith("/v1/models"):
            await self._models(send, sent.headers)
            return
        if self.on_miss is not None:
            self.on_miss(sent, why)
        await send_error(send, target(scope), scope_headers(scope), self.miss_status, why, NO_MATCH)

    async def _play(self, exchange: Exchange, t0: int, receive: Receive, send: Send) -> None:
        if exchange.status == 0:  # the upstream never answered when this was recorded
            await self._scheduler().until(t0 + schedule([exchange.end_ns], self.pacing)[0])
            timed_out = exchange.outcome is Outcome.TIMEOUT
            status, code = (504, "upstream_timeout") if timed_out else (502, "upstream_unreachable")
            why = f"{exchange.error or 'the upstream failed'} (replayed from the cassette)"
            request = exchange.request
            await send_error(send, request.url, request.headers, status, why, code)
            return
        start = {
            "type": "http.response.start",
            "status": exchange.status,
            "headers": encode_headers(replay_headers(exchange)),
        }
        if self.pacing.instant:
            await send(start)
            await send({"type": "http.response.body", "body": exchange.body, "more_body": True})
        elif not await self._paced(exchange, t0, start, receive, send):
            return
        if exchange.outcome in _BROKEN:
            abort_response()  # the recorded stream broke off: so does this one
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _paced(
        self, exchange: Exchange, t0: int, start: dict[str, Any], receive: Receive, send: Send
    ) -> bool:
        """Send the headers and every read on its deadline; False if the client left."""
        left: list[bool] = []
        watcher = watch_disconnect(receive, lambda: left.append(True))
        until = self._scheduler().until
        deadlines = schedule(exchange, self.pacing)
        try:
            await until(t0 + deadlines[0])
            await send(start)
            for read, at in zip(exchange.reads, deadlines[1:], strict=True):
                await until(t0 + at)
                if left:
                    return False
                await send({"type": "http.response.body", "body": read.data, "more_body": True})
            return True
        finally:
            watcher.cancel()

    async def _models(self, send: Send, headers: Headers) -> None:
        """The models the recorded requests asked for, as the API would list them."""
        ids = await asyncio.to_thread(self.model_ids)
        listing: dict[str, Any]
        data: list[dict[str, Any]]
        if is_anthropic("/v1/models", headers):
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
                for m in ids
            ]
            listing = {
                "data": data,
                "has_more": False,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        else:
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "streamtape"} for m in ids
            ]
            listing = {"object": "list", "data": data}
        body = msgspec.json.encode(listing)
        json_headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        await respond(send, 200, json_headers, body)

    def model_ids(self) -> list[str]:
        """Every ``model`` named in a recorded JSON request body, sorted."""
        found: set[str] = set()
        for request in self.library.requests():
            if request.body[:1] != b"{":
                continue
            try:
                value = msgspec.json.decode(request.body)
            except msgspec.DecodeError:
                continue
            model = value.get("model") if isinstance(value, dict) else None
            if isinstance(model, str):
                found.add(model)
        return sorted(found)

    def close(self) -> None:
        """Close the cassette it records into (a later recording reopens it)."""
        if self.proxy is not None:
            self.proxy.close()
