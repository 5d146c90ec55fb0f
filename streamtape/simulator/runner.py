"""Run an ASGI app on uvicorn on loopback in a background thread, and know when it listens.

The simulator, the recording proxy and the replay server all run this way: bind first
(so port 0 gives a free port and the URL is known before serving), start uvicorn on
that socket in a thread, and return only once it accepts connections, so callers never
sleep blindly. Stopping asks the app to end its open streams (``on_stop``) before
uvicorn shuts down, so a stalled stream cannot hold the thread.

An app that cuts a response on purpose (a simulated fault, a proxied upstream that
died) calls ``abort_response()`` and returns: uvicorn then closes the connection, and
its "returned without completing response" complaint is silenced for that task only.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from streamtape.simulator.arrival import stamped_protocol
from streamtape.simulator.fdtable import reserve_descriptors

_S = TypeVar("_S", bound="LoopbackServer")

_ABORTED_TASKS: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
_UVICORN_ABORT_MESSAGES = frozenset(
    {
        "ASGI callable returned without completing response.",
        "ASGI callable returned without starting response.",
    }
)


class _DeliberateAbortFilter(logging.Filter):
    """Silence uvicorn's complaint only for responses an app cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _UVICORN_ABORT_MESSAGES:
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return True
        return task is None or task not in _ABORTED_TASKS


_ABORT_FILTER = _DeliberateAbortFilter()


def abort_response() -> None:
    """Mark the current request's response as cut on purpose (call, then return unfinished)."""
    logger = logging.getLogger("uvicorn.error")
    if _ABORT_FILTER not in logger.filters:
        logger.addFilter(_ABORT_FILTER)
    task = asyncio.current_task()
    if task is not None:
        _ABORTED_TASKS.add(task)


def drop_connection(send: Callable[..., Any]) -> bool:
    """Close the client's connection before any response; whether that was possible.

    ASGI has no word for it, so this reaches uvicorn's request cycle, whose ``send`` is
    a bound method: its transport is closed and the cycle marked disconnected, so
    uvicorn sends no 500 in its place. Under another server it returns False.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        return False
    transport.close()
    cycle.disconnected = True  # type: ignore[union-attr]
    return True


class _ReadyServer(uvicorn.Server):
    """A uvicorn server that reports when it listens and which loop it runs on."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket; ``IPPROTO_TCP`` so asyncio sets ``TCP_NODELAY`` on it.

    Without ``TCP_NODELAY`` every small event waits ~40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackServer:
    """Serve ``app`` with uvicorn in a background thread; a context manager.

    ``on_stop(loop)`` is called from the stopping thread with the server's event loop,
    for the app to end its open streams before uvicorn waits for them.
    ``timeout_graceful_shutdown`` is how long ``stop()`` lets open responses finish
    before uvicorn cancels them; ``options`` go to ``uvicorn.Config`` as they are, except
    that a named ``http`` protocol becomes its arrival-stamping twin (``arrival``).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
        on_stop: Callable[[asyncio.AbstractEventLoop], None] | None = None,
        name: str = "streamtape-server",
        timeout_graceful_shutdown: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.on_stop = on_stop
        self.name = name
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.options = dict(options or {})
        self._server: _ReadyServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the server runs on (None before start and after stop)."""
        return self._server.loop if self._server is not None else None

    def start(self: _S) -> _S:
        """Bind, start serving, and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        reserve_descriptors()  # before there are connections to stall (fdtable)
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        settings: dict[str, Any] = {
            "lifespan": "off",
            "log_level": "warning",
            "access_log": False,
            "ws": "none",
            "http": "h11",
            "loop": "asyncio",
            "interface": "asgi3",
            # Typed int, used as asyncio.wait_for's timeout: fractions of a second work.
            "timeout_graceful_shutdown": self.timeout_graceful_shutdown,
        }
        settings.update(self.options)
        if isinstance(settings["http"], str):
            settings["http"] = stamped_protocol(settings["http"])
        config = uvicorn.Config(self.app, **settings)
        server = _ReadyServer(config)
        self._server = server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to the thread that waits for startup
                self._error = exc
            finally:
                sock.close()
                server.ready.set()

        self._thread = threading.Thread(target=run, name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()
        if not server.ready.wait(self.startup_timeout) or not server.started:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start on {self.url}: {self._error or 'timed out'}"
            )
        return self

    def stop(self) -> None:
        """End open streams, stop the server and join its thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        if server.loop is not None and self.on_stop is not None:
            self.on_stop(server.loop)
        server.should_exit = True
        thread.join(timeout=5.0 + (self.timeout_graceful_shutdown or 0.0))
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)
        self._server = self._thread = None

    def force_exit(self) -> None:
        """Stop at once, without waiting for open responses (a second Ctrl-C)."""
        server = self._server
        if server is not None:
            server.force_exit = True

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
