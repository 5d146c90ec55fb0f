"""Route every default transport of httpx and httpx2 through one handler, for one test.

The one point per library is the default transport class: ``HTTPTransport.
handle_request`` and ``AsyncHTTPTransport.handle_async_request``. Every client that
did not bring its own transport holds one of these (a bare ``openai.OpenAI()``, an
``anthropic.Anthropic()``, a client built at import time), so patching the methods
reaches them all, and restoring them leaves nothing behind.

The handler gets the transport the client holds, so recording goes out through the
client's own connection pool, TLS and proxy settings. While it calls that transport
it sets a flag (a context variable, so threads and tasks never see each other's) that
lets the call through to the real method.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from streamtape.transport.httpcompat import HTTP_LIBS

_PASS_THROUGH: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "streamtape_pass_through", default=False
)

SyncSend = Callable[[Any, Any], Any]
AsyncSend = Callable[[Any, Any], Awaitable[Any]]


class Handler(Protocol):
    """What the interceptor hands each request to."""

    def handle(self, transport: Any, request: Any) -> Any: ...

    async def handle_async(self, transport: Any, request: Any) -> Any: ...


def passing_through() -> contextvars.Token[bool]:
    """Let calls from this context reach the real transports (undo with ``reset``)."""
    return _PASS_THROUGH.set(True)


def reset(token: contextvars.Token[bool]) -> None:
    _PASS_THROUGH.reset(token)


class Interceptor:
    """Installs ``handler`` on the default transports of httpx and httpx2; undoes it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._saved: list[tuple[type[Any], str, Any]] = []

    def install(self) -> None:
        for lib in HTTP_LIBS:
            self._patch_sync(lib)
            self._patch_async(lib)

    def _patch_sync(self, lib: types.ModuleType) -> None:
        cls = lib.HTTPTransport
        real: SyncSend = cls.handle_request
        handler = self.handler

        def handle_request(transport: Any, request: Any) -> Any:
            if _PASS_THROUGH.get():
                return real(transport, request)
            return handler.handle(transport, request)

        self._saved.append((cls, "handle_request", real))
        cls.handle_request = handle_request

    def _patch_async(self, lib: types.ModuleType) -> None:
        cls = lib.AsyncHTTPTransport
        real: AsyncSend = cls.handle_async_request
        handler = self.handler

        async def handle_async_request(transport: Any, request: Any) -> Any:
            if _PASS_THROUGH.get():
                return await real(transport, request)
            return await handler.handle_async(transport, request)

        self._saved.append((cls, "handle_async_request", real))
        cls.handle_async_request = handle_async_request

    def uninstall(self) -> None:
        saved, self._saved = self._saved, []
        for cls, name, real in reversed(saved):
            setattr(cls, name, real)
