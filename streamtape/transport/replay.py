"""One httpx/httpx2 transport that replays recorded exchanges, sync and async.

Replay matches the request to a recording and releases each read at its absolute
deadline on one monotonic clock. The sync and async streams are thin loops over one
core (``_Replay``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Outcome
from streamtape.core.match import Matcher
from streamtape.core.pacing import Clock, Pacing, asleep_until, loop_clock, schedule, sleep_until
from streamtape.core.redact import Redactor
from streamtape.transport._common import CassetteLike, cassette_to_read
from streamtape.transport.httpcompat import (
    AsyncStreamBase,
    AsyncTransportBase,
    SyncStreamBase,
    SyncTransportBase,
    library_of,
    make_response,
    recorded_request,
)

# --------------------------------------------------------------------------- replay


class _Replay:
    """One replayed exchange: its absolute deadlines and how its body must end."""

    def __init__(self, exchange: Exchange, pacing: Pacing, t0: int, request: Any) -> None:
        self.exchange = exchange
        self.request = request
        self.lib = library_of(request)
        deadlines = schedule(exchange, pacing)
        self.headers_at = t0 + deadlines[0]
        self.read_at = [t0 + d for d in deadlines[1:]]

    def failure(self) -> Exception | None:
        """The error the upstream gave when recorded, rebuilt in the caller's library."""
        exchange = self.exchange
        if exchange.outcome is Outcome.TIMEOUT:
            cls = self.lib.ReadTimeout if exchange.status else self.lib.ConnectTimeout
        elif exchange.outcome is Outcome.UPSTREAM_ERROR:
            cls = self.lib.RemoteProtocolError if exchange.status else self.lib.ConnectError
        else:
            return None
        message = f"{exchange.error or 'upstream failed'} (replayed from the cassette)"
        error: Exception = cls(message, request=self.request)
        return error

    def response(self, stream: object) -> Any:
        exchange = self.exchange
        if exchange.status == 0:
            raise self.failure() or self.lib.ConnectError(
                "no response was recorded", request=self.request
            )
        return make_response(
            self.lib, exchange.status, exchange.response_headers, stream, exchange.http_version
        )


class _ReplayStream(SyncStreamBase):
    def __init__(self, replay: _Replay, clock: Clock) -> None:
        self._replay = replay
        self._clock = clock

    def __iter__(self) -> Iterator[bytes]:
        replay = self._replay
        for read, deadline in zip(replay.exchange.reads, replay.read_at, strict=True):
            sleep_until(deadline, clock=self._clock)
            yield read.data
        error = replay.failure()
        if error is not None:
            raise error


class _AsyncReplayStream(AsyncStreamBase):
    def __init__(self, replay: _Replay, clock: Clock) -> None:
        self._replay = replay
        self._clock = clock

    async def __aiter__(self) -> AsyncIterator[bytes]:
        replay = self._replay
        for read, deadline in zip(replay.exchange.reads, replay.read_at, strict=True):
            await asleep_until(deadline, clock=self._clock)
            yield read.data
        error = replay.failure()
        if error is not None:
            raise error


class ReplayTransport(SyncTransportBase, AsyncTransportBase):
    """Answers requests from a cassette, with no network, at the recorded pacing.

    Works in sync and async clients of httpx and httpx2 alike. ``pacing`` is
    ``"original"``, ``"instant"`` or a speed factor (``2.0`` = twice as fast);
    ``max_gap`` caps any single recorded gap (seconds). Matching options
    (``ignore_fields``, ``ignore_query``, ``match_on``, ``allow_playback_repeats``)
    go to :class:`streamtape.match.Matcher`. Sent requests are redacted as the
    recorder would (``redact``) before matching, so secrets never need to match.

    ``clock`` (ns) defaults to ``time.perf_counter_ns`` for sync clients and to the
    running event loop's clock for async ones, so a loop with virtual time
    (``looptime``) sees the recorded gaps without waiting for them.
    """

    def __init__(
        self,
        cassette: CassetteLike | Iterable[Exchange],
        pacing: str | float | Pacing = "original",
        *,
        max_gap: float | None = None,
        redact: object = None,
        clock: Clock | None = None,
        **match_options: Any,
    ) -> None:
        if isinstance(cassette, (Cassette, str, os.PathLike)):
            exchanges: Iterable[Exchange] = cassette_to_read(cassette).exchanges()
        else:
            exchanges = cassette
        self.pacing = Pacing.parse(pacing)
        if max_gap is not None:
            self.pacing = dataclasses.replace(self.pacing, max_gap_s=max_gap)
        self.matcher = Matcher(exchanges, **match_options)
        self.redactor = Redactor.coerce(redact)
        self._clock = clock

    def _begin(self, request: Any, body: bytes, t0: int) -> _Replay:
        sent, _ = self.redactor.redact_request(recorded_request(request, body))
        exchange = self.matcher.match(sent.method, sent.url, sent.headers, sent.body)
        return _Replay(exchange, self.pacing, t0, request)

    def handle_request(self, request: httpx.Request) -> Any:
        clock = self._clock or time.perf_counter_ns
        replay = self._begin(request, request.read(), clock())
        sleep_until(replay.headers_at, clock=clock)
        return replay.response(_ReplayStream(replay, clock))

    async def handle_async_request(self, request: httpx.Request) -> Any:
        clock = self._clock or loop_clock()
        replay = self._begin(request, await request.aread(), clock())
        await asleep_until(replay.headers_at, clock=clock)
        return replay.response(_AsyncReplayStream(replay, clock))
