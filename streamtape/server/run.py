"""Run the servers: where they listen, the loopback rule, and ``serve()`` for Python.

Both servers run on the simulator's uvicorn runner (one loopback runner for the
project), with uvicorn's own ``server`` and ``date`` headers off so the recorded ones
pass unchanged. They bind 127.0.0.1 unless told otherwise; any other address makes
the recordings (and, through the proxy, the upstream) reachable from other machines,
so it is warned about.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from streamtape.errors import ExposedServerWarning, ServerConfigError
from streamtape.server.replay import ReplayServer
from streamtape.simulator.idlegc import IdleCollector
from streamtape.simulator.runner import LoopbackServer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or a bare ``PORT`` (on 127.0.0.1)."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, value
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServerConfigError(
            f"--listen {text!r}: expected HOST:PORT (e.g. 127.0.0.1:8787) or a port number"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """What to tell the user when ``host`` is reachable from other machines, else None."""
    if is_loopback(host):
        return None
    return (
        f"listening on {host}:{port}, which other machines can reach: every recording "
        "served (and any upstream the server forwards to) is reachable from them too"
    )


def loopback_server(
    app: Any, host: str = DEFAULT_HOST, port: int = 0, grace: float = 1.0, name: str = "streamtape"
) -> LoopbackServer:
    """A runner for one of our apps, with the recorded headers left to the app.

    The app collects its garbage between requests (``IdleCollector``).
    """
    return LoopbackServer(
        IdleCollector(app),
        host=host,
        port=port,
        name=name,
        timeout_graceful_shutdown=grace,
        options={
            "server_header": False,
            "date_header": False,
            "backlog": 4096,
            "lifespan": "on",
            "http": "auto",
        },
    )


@contextlib.contextmanager
def serve(
    *paths: str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = 0,
    grace: float = 1.0,
    **options: Any,
) -> Iterator[str]:
    """Run a replay server over ``paths`` in a background thread; yields its root URL.

    ``options`` are :class:`ReplayServer`'s (``pacing``, ``max_gap``, ``miss_status``,
    ``upstream`` and ``mode``, the matching options). OpenAI clients take
    ``f"{url}/v1"`` as base URL, Anthropic clients ``url``. A host other than loopback
    warns with :class:`ExposedServerWarning`.
    """
    message = exposure_warning(host, port)
    if message is not None:
        warnings.warn(message, ExposedServerWarning, stacklevel=3)
    app = ReplayServer(_flatten(paths), **options)
    try:
        with loopback_server(app, host, port, grace, name="streamtape-replay") as server:
            yield server.url
    finally:
        app.close()


def _flatten(paths: Iterable[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    out: list[str | os.PathLike[str]] = []
    for path in paths:
        if isinstance(path, (list, tuple)):
            out.extend(path)
        else:
            out.append(path)
    return out
