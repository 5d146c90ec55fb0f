"""pytest plugin: record LLM streams once, replay them offline, with no change to the code.

Mark a test with ``@pytest.mark.tape`` and every httpx and httpx2 client it uses
(a bare ``openai.OpenAI()``, ``anthropic.Anthropic()``, one built at import time) is
answered from ``cassettes/<module>/<test>.tape`` beside the test file. ``--tape-mode``
says when to record (``none``, the default and what CI always gets, replays only);
in replay a request that is not on tape fails the test with the nearest recorded
request, and the network is blocked at the socket layer.

This is the one place streamtape intercepts anything: the default transport of each
HTTP library, from the setup of a marked test to the end of its teardown, and the
socket functions while it replays. Unmarked tests are not touched.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamtape._pytest.guard import NetworkBlockedError, NetworkGuard
from streamtape._pytest.intercept import Interceptor
from streamtape._pytest.matrix import STANDARD_FAULTS, fault_matrix
from streamtape._pytest.session import TapeSession
from streamtape._pytest.settings import MODES, TapeConfigError, add_options, settings_for
from streamtape._pytest.tape import Tape, TapeTransport
from streamtape.errors import StreamtapeError

__all__ = [
    "MODES",
    "STANDARD_FAULTS",
    "NetworkBlockedError",
    "Tape",
    "TapeConfigError",
    "TapeTransport",
    "fault_matrix",
]

_MARKER_HELP = (
    "tape(name=None, *, mode=None, pacing=None, max_gap=None, strict=None, match_on=None, "
    "ignore_fields=None, ignore_query=None, allow_playback_repeats=False, redact=None, "
    "allow_hosts=None, ignore_hosts=None, faults=None, seed=0): record and replay this "
    "test's HTTP traffic, with faults injected into the replay (streamtape)"
)


class _Active:
    """A marked test's tape with its interception in place."""

    def __init__(self, item: pytest.Item) -> None:
        self.session = TapeSession(settings_for(item))
        self.tape = Tape(self.session)
        self.interceptor = Interceptor(self.session)
        self.guard: NetworkGuard | None = None
        if not self.session.records:
            self.guard = NetworkGuard(item.nodeid, self.session.settings.allow_hosts)

    def start(self) -> None:
        self.interceptor.install()
        if self.guard is not None:
            self.guard.install()

    def stop(self, installed: set[Path]) -> None:
        try:
            self.interceptor.uninstall()
            if self.guard is not None:
                self.guard.uninstall()
            self.tape.transport.close()
        finally:
            self.session.close(installed)

    def problems(self) -> str | None:
        """What went wrong with the tape during the test, even if the code swallowed it."""
        found = list(self.session.problems)
        if self.guard is not None and self.guard.refused:
            found.append(
                "streamtape blocked the network; refused: " + ", ".join(self.guard.refused)
            )
        drift = self.session.drift()
        if drift:
            found.append(drift)
        return "\n\n".join(found) if found else None


_ACTIVE = pytest.StashKey[_Active]()
_INSTALLED = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    config.stash[_INSTALLED] = set()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Intercept before any fixture is set up (a plain hook, so a failure here leaves
    the other plugins' setup wrappers whole)."""
    if item.get_closest_marker("tape") is None:
        return
    try:
        active = _Active(item)
    except StreamtapeError as exc:
        message = str(exc)
    else:
        item.stash[_ACTIVE] = active
        active.start()
        return
    pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    active = item.stash.get(_ACTIVE, None)
    if active is None:
        return (yield)
    try:
        result = yield
    except BaseException:
        problems = active.problems()
        if problems:
            item.add_report_section("call", "streamtape", problems)
        raise
    problems = active.problems()
    if problems:
        pytest.fail(problems, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        active = item.stash.get(_ACTIVE, None)
        if active is not None:
            del item.stash[_ACTIVE]
            active.stop(item.config.stash[_INSTALLED])


def _active(request: pytest.FixtureRequest) -> _Active:
    active: _Active | None = request.node.stash.get(_ACTIVE, None)
    if active is None:
        pytest.fail(
            f"{request.node.nodeid}: the {request.fixturename} fixture needs "
            "@pytest.mark.tape on the test",
            pytrace=False,
        )
    return active


@pytest.fixture
def tape(request: pytest.FixtureRequest) -> Tape:
    """The marked test's cassette, the exchanges it used and their assembled responses."""
    return _active(request).tape


def _client(request: pytest.FixtureRequest, module: str) -> Iterator[Any]:
    lib = pytest.importorskip(module)
    with lib.Client(transport=_active(request).tape.transport) as client:
        yield client


@pytest.fixture
def tape_httpx(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An ``httpx.Client`` on the marked test's tape."""
    yield from _client(request, "httpx")


@pytest.fixture
def tape_httpx2(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An ``httpx2.Client`` on the marked test's tape (skips where httpx2 is missing)."""
    yield from _client(request, "httpx2")
