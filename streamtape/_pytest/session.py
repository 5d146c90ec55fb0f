"""One marked test's tape: answers intercepted requests by replaying or recording.

Which it does follows the mode: ``none`` replays only; ``once`` records when the
cassette is missing and otherwise replays only; ``new_episodes`` replays what matches
and records the rest; ``all`` records everything into a fresh file that replaces the
cassette when the test ends (only if it recorded something, so a test that failed
early loses nothing). Recording appends to the cassette as each exchange ends, which
is safe across threads and xdist workers.

Problems that the code under test may swallow (an unmatched request, a refused host)
are kept here, so the plugin fails the test with them all the same.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamtape._pytest.intercept import passing_through, reset
from streamtape._pytest.settings import TapeSettings
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.core.match import Matcher
from streamtape.errors import NoMatchError
from streamtape.transport import AsyncRecordingTransport, RecordingTransport, ReplayTransport


class _NotingCassette(Cassette):
    """A cassette that also tells the tape what was appended (redacted, as written)."""

    def __init__(self, path: Path, on_append: Any) -> None:
        super().__init__(path)
        self._on_append = on_append

    def append(self, exchange: Exchange) -> None:
        super().append(exchange)
        self._on_append(exchange, False)


class _NotingMatcher(Matcher):
    """A matcher that tells the tape which recorded exchange answered each request."""

    def __init__(self, exchanges: list[Exchange], on_match: Any, **options: Any) -> None:
        super().__init__(exchanges, **options)
        self._on_match = on_match

    def match(self, method: str, url: str, headers: Any, body: bytes) -> Exchange:
        exchange = super().match(method, url, headers, body)
        self._on_match(exchange, True)
        return exchange


def _recording_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.recording-{os.getpid()}-{threading.get_ident()}")


class TapeSession:
    """The state of one marked test between setup and teardown."""

    def __init__(self, settings: TapeSettings) -> None:
        self.settings = settings
        self.path = settings.path
        self.mode = settings.mode
        self.used: list[Exchange] = []
        self.replayed: list[Exchange] = []
        self.recorded: list[Exchange] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        existing = Cassette.open(self.path).exchanges() if self.path.exists() else []
        self.existed = bool(existing)
        self.records = self.mode in ("new_episodes", "all") or (
            self.mode == "once" and not self.existed
        )
        self.replays = self.mode in ("none", "new_episodes") or (
            self.mode == "once" and self.existed
        )
        target = _recording_path(self.path) if self.mode == "all" else self.path
        self._target = target
        self.cassette = _NotingCassette(target, self._note)
        self.replay = ReplayTransport(
            (), settings.pacing, redact=settings.redactor, faults=settings.faults
        )
        self.replay.matcher = _NotingMatcher(
            existing if self.replays else [], self._note, **settings.match_options
        )
        if self.records:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    # -- what the test used ------------------------------------------------------------

    def _note(self, exchange: Exchange, replayed: bool) -> None:
        with self._lock:
            self.used.append(exchange)
            (self.replayed if replayed else self.recorded).append(exchange)

    def unused(self) -> list[Exchange]:
        """Recorded exchanges no request of this test asked for."""
        return self.replay.matcher.unused()

    # -- answering requests ------------------------------------------------------------

    def _ignored(self, request: Any) -> bool:
        if not self.settings.ignore_hosts:
            return False
        host = (urlsplit(str(request.url)).hostname or "").lower()
        return host in self.settings.ignore_hosts

    def _no_match(self, exc: NoMatchError) -> NoMatchError:
        if not self.existed and self.mode == "none":
            exc = NoMatchError(
                f"{exc}\nthe cassette {self.path} does not exist: record it with "
                "--tape-mode=once (CI never records)"
            )
        with self._lock:
            self.problems.append(str(exc))
        return exc

    def handle(self, transport: Any, request: Any) -> Any:
        """Answer one request of a sync client whose transport is ``transport``."""
        if self._ignored(request):
            return self._through(transport.handle_request, request)
        if self.replays:
            try:
                return self.replay.handle_request(request)
            except NoMatchError as exc:
                if not self.records:
                    raise self._no_match(exc) from None
        return self._through(self._record_sync, request, transport)

    async def handle_async(self, transport: Any, request: Any) -> Any:
        """The async twin of ``handle``."""
        if self._ignored(request):
            token = passing_through()
            try:
                return await transport.handle_async_request(request)
            finally:
                reset(token)
        if self.replays:
            try:
                return await self.replay.handle_async_request(request)
            except NoMatchError as exc:
                if not self.records:
                    raise self._no_match(exc) from None
        recorder = AsyncRecordingTransport(self.cassette, transport, redact=self.settings.redactor)
        token = passing_through()
        try:
            return await recorder.handle_async_request(request)
        finally:
            reset(token)

    def _record_sync(self, request: Any, transport: Any) -> Any:
        recorder = RecordingTransport(self.cassette, transport, redact=self.settings.redactor)
        return recorder.handle_request(request)

    @staticmethod
    def _through(send: Any, *args: Any) -> Any:
        token = passing_through()
        try:
            return send(*args)
        finally:
            reset(token)

    # -- the end ---------------------------------------------------------------------

    def drift(self) -> str | None:
        """With strict on, the exchanges this test left unused, as a failure message."""
        if not self.settings.strict or not self.replays:
            return None
        left = self.unused()
        if not left:
            return None
        lines = [
            f"--tape-strict: {len(left)} recorded exchange(s) in {self.path} were not "
            "used; the code no longer sends them (re-record with --tape-mode=all):"
        ]
        lines += [f"  {ex.request.method} {ex.request.url}" for ex in left[:20]]
        if len(left) > 20:
            lines.append(f"  ... and {len(left) - 20} more")
        return "\n".join(lines)

    def close(self, installed: set[Path]) -> None:
        """Close files; in mode ``all`` put the new recording in place of the cassette.

        ``installed`` holds the cassettes this process re-recorded already, so a second
        test sharing one appends to the first one's recording instead of replacing it.
        """
        self.cassette.close()
        if self.mode != "all" or not self._target.exists():
            return
        if self.path not in installed and self.recorded:
            os.replace(self._target, self.path)
            installed.add(self.path)
            return
        if self.recorded:
            with Cassette(self.path) as cassette:
                for exchange in Cassette.open(self._target):
                    cassette.append(exchange)
        with contextlib.suppress(FileNotFoundError):
            self._target.unlink()
