"""Run an ASGI app on uvicorn on loopback in a background thread, and know when it listens.

The simulator, the recording proxy and the replay server all run this way: bind first
(so port 0 gives a free port and the URL is known before serving), start uvicorn on
that socket in a thread, and return only once it accepts connections, so callers never
sleep blindly. Stopping asks the app to end its open streams (``on_stop``) before
uvicorn shuts down, so a stalled stream cannot hold the thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

_S = TypeVar("_S", bound="LoopbackServer")


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
        timeout_graceful_shutdown: int | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.on_stop = on_stop
        self.name = name
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
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
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ws="none",
            http="h11",
            loop="asyncio",
            interface="asgi3",
            timeout_graceful_shutdown=self.timeout_graceful_shutdown,
        )
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
        self._server = self._thread = None
        if server is None or thread is None:
            return
        if server.loop is not None and self.on_stop is not None:
            self.on_stop(server.loop)
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
