"""The socket-level network guard of a replaying test.

A test that replays must not reach the network by any road, so besides routing every
httpx/httpx2 client through the cassette, name lookups and connections are refused
at the socket layer, which catches the clients we do not intercept (``urllib``,
``requests``, raw sockets) too. The refusal names the host, so the user sees what
their code tried to reach.

Loopback is the test's own machine, not the network, but a local daemon (a model
server, a proxy) answers differently on every machine, so loopback is allowed only
where the test needs it: a port this process itself listens on (a server the test
or its fixtures started), or a host the user allowed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from streamtape.errors import StreamtapeError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkBlockedError(StreamtapeError, OSError):
    """A replaying test tried to reach a host that is not allowed.

    An ``OSError``, so HTTP libraries that map socket errors report it as the
    connection error it is, with this message.
    """


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _listening_ports() -> set[int] | None:
    """TCP ports this process listens on, or None where the platform cannot tell."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports: set[int] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.readlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                # local_address is HEXIP:HEXPORT, state 0A is LISTEN, field 9 the inode.
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports
    except OSError:
        return None


class NetworkGuard:
    """Refuses lookups and connections to hosts a replaying test may not reach.

    ``allow`` holds host names or ``host:port`` pairs that stay reachable. ``refused``
    collects every refusal, so the plugin fails the test even when the code under
    test swallowed the error.
    """

    def __init__(self, test: str, allow: Iterable[str] = ()) -> None:
        self.test = test
        self.allow = frozenset(a.lower() for a in allow)
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def allowed(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        if host in self.allow or (port is not None and f"{host}:{port}" in self.allow):
            return True
        if not _is_loopback(host):
            return False
        if "loopback" in self.allow or port is None or port == 0:
            return True  # a lookup of a loopback name reaches nothing yet
        ports = _listening_ports()
        return ports is None or port in ports

    def refuse(self, host: str, port: int | None) -> NetworkBlockedError:
        where = host if port is None else f"{host}:{port}"
        with self._lock:
            self.refused.append(where)
        return NetworkBlockedError(
            f"streamtape blocked the network for {self.test}: refused {where} "
            "(the test replays from its cassette; record new requests with "
            "--tape-mode=once or new_episodes, or allow the host with "
            f'@pytest.mark.tape(allow_hosts=["{host}"]))'
        )

    def _check(self, address: Any) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], str):
            host, port = address[0], int(address[1])
            if not self.allowed(host, port):
                raise self.refuse(host, port)

    def install(self) -> None:
        """Guard ``socket.getaddrinfo`` and ``socket.socket.connect``/``connect_ex``."""
        guard = self
        getaddrinfo: Callable[..., Any] = socket.getaddrinfo
        connect = socket.socket.connect
        connect_ex = socket.socket.connect_ex
        self._saved = {"getaddrinfo": getaddrinfo, "connect": connect, "connect_ex": connect_ex}

        def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode("idna") if isinstance(host, bytes) else host
            if isinstance(name, str) and not guard.allowed(name, None):
                raise guard.refuse(name, port if isinstance(port, int) else None)
            return getaddrinfo(host, port, *args, **kwargs)

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            guard._check(address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            guard._check(address)
            return connect_ex(sock, address)

        socket.getaddrinfo = guarded_getaddrinfo
        socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        saved, self._saved = self._saved, {}
        if saved:
            socket.getaddrinfo = saved["getaddrinfo"]
            socket.socket.connect = saved["connect"]  # type: ignore[method-assign]
            socket.socket.connect_ex = saved["connect_ex"]  # type: ignore[method-assign]
