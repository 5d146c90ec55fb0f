"""The ``tape`` fixture's object, and the transport behind the ready-made clients."""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any

from streamtape._pytest.session import TapeSession
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.core.fault_plan import Fired
from streamtape.core.pacing import Pacing
from streamtape.formats import assemble
from streamtape.transport.httpcompat import (
    AsyncTransportBase,
    SyncTransportBase,
    library_of,
)


class TapeTransport(SyncTransportBase, AsyncTransportBase):
    """An explicit transport onto a test's tape, for httpx and httpx2, sync and async.

    Clients that bring their own transport are not intercepted; give them this one.
    Recording goes out through a default transport of the request's library.
    """

    def __init__(self, session: TapeSession) -> None:
        self._session = session
        self._inner: dict[tuple[types.ModuleType, bool], Any] = {}
        self._lock = threading.Lock()

    def _transport(self, request: Any, is_async: bool) -> Any:
        lib = library_of(request)
        with self._lock:
            inner = self._inner.get((lib, is_async))
            if inner is None:
                inner = lib.AsyncHTTPTransport() if is_async else lib.HTTPTransport()
                self._inner[(lib, is_async)] = inner
        return inner

    def handle_request(self, request: Any) -> Any:
        return self._session.handle(self._transport(request, False), request)

    async def handle_async_request(self, request: Any) -> Any:
        return await self._session.handle_async(self._transport(request, True), request)

    def close(self) -> None:
        for (_, is_async), inner in list(self._inner.items()):
            if not is_async:
                inner.close()

    async def aclose(self) -> None:
        for (_, is_async), inner in list(self._inner.items()):
            if is_async:
                await inner.aclose()


class Tape:
    """A marked test's cassette and what the test did with it, for assertions.

    ``exchanges`` are the exchanges the test used, in the order they were answered
    (replayed from the cassette or recorded now); ``responses[i]`` is exchange ``i``
    reassembled into its format's response object.
    """

    def __init__(self, session: TapeSession) -> None:
        self._session = session
        self.transport = TapeTransport(session)
        """Give it to a client built with its own transport: ``httpx.Client(transport=...)``."""

    @property
    def path(self) -> Path:
        """Where the cassette lives."""
        return self._session.path

    @property
    def mode(self) -> str:
        """The record mode in force: none, once, new_episodes or all."""
        return self._session.mode

    @property
    def recording(self) -> bool:
        """Whether this test may record (new requests go to the upstream)."""
        return self._session.records

    @property
    def pacing(self) -> Pacing:
        return self._session.settings.pacing

    @property
    def cassette(self) -> Cassette:
        """The cassette file, to read what it holds now."""
        return Cassette.open(self.path)

    @property
    def exchanges(self) -> list[Exchange]:
        return list(self._session.used)

    @property
    def replayed(self) -> list[Exchange]:
        return list(self._session.replayed)

    @property
    def recorded(self) -> list[Exchange]:
        return list(self._session.recorded)

    @property
    def responses(self) -> list[Any]:
        """The assembled response of each used exchange (a ChatCompletion, ...)."""
        return [assemble(exchange) for exchange in self._session.used]

    @property
    def faults(self) -> list[Fired]:
        """The faults of ``faults=`` that acted, in order, each saying where."""
        return self._session.replay.fired

    def faults_report(self) -> str:
        """One line per fault that fired, for an assertion message."""
        fired = "\n".join(str(f) for f in self.faults)
        if fired:
            return fired
        if self.recording and self._session.settings.faults:
            return "no fault fired: this run records, and faults act only on replay"
        return "no fault fired"

    def unused(self) -> list[Exchange]:
        """Recorded exchanges that no request of this test has asked for yet."""
        return self._session.unused()

    def __repr__(self) -> str:
        return f"<Tape {str(self.path)!r} mode={self.mode} used={len(self._session.used)}>"
