"""What the plugin's pytester tests share: how inner runs start, an upstream to record from.

Imported by the test modules, never collected itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import openai
import pytest

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.simulator.app import UpstreamServer
from streamtape.transport.httpcompat import HTTP_LIBS

# Loaded before any inner run: pytester unloads whatever an in-process run imported
# first, and a later test would then meet a second copy of those modules (httpx's
# lazily imported httpcore among them, whose exception classes httpx maps by
# identity). Loading the SDKs here also spares every inner run their import time.
SDKS = (httpx, openai)
for _lib in HTTP_LIBS:
    _lib.HTTPTransport().close()
    _lib.AsyncHTTPTransport()
with contextlib.suppress(ImportError):
    import anthropic  # noqa: F401

FAKE_KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"

PLUGIN = ("-p", "streamtape.pytest_plugin")
"""Where the entry point is installed this is a no-op (it has the module's name)."""
QUIET = ("-p", "no:cacheprovider", "-p", "no:unraisableexception")
"""No cache files, and no gc pass per inner run (the outer run still reports leaks)."""
NO_ASYNC = ("-p", "no:asyncio", "-p", "no:looptime_plugin")
"""Only the virtual-time test needs them; looptime leaks an event loop from sync tests."""


def live_upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamServer]:
    """An upstream of the test's own (a fixture body), so a replay run can prove it is
    offline by stopping it; the openai SDK finds it through its environment variables."""
    monkeypatch.delenv("CI", raising=False)
    with UpstreamServer(speed=50.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        yield server


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*PLUGIN, *QUIET, *NO_ASYNC, *args)


def tapes(pytester: pytest.Pytester) -> dict[str, list[Exchange]]:
    return {
        p.relative_to(pytester.path).as_posix(): Cassette.open(p).exchanges()
        for p in sorted(pytester.path.rglob("*.tape"))
    }
