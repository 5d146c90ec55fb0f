"""The loopback runner's process-level care: request arrival stamps and the descriptor table."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from streamtape.simulator.arrival import (
    RECEIVED,
    StampedH11Protocol,
    received_ns,
    stamped_protocol,
)
from streamtape.simulator.fdtable import reserve_descriptors
from streamtape.simulator.runner import LoopbackServer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux behaviour")


class StampApp:
    """Answers every request with its arrival stamp and the moment it was called."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        called = time.perf_counter_ns()
        while (await receive()).get("more_body"):
            pass
        body = f"{received_ns(scope)} {called}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def ask(sock: socket.socket, port: int) -> tuple[int, int]:
    """One keep-alive GET on ``sock``: the stamp and call time the app answered."""
    sock.sendall(f"GET / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    stamp, called = body.split()
    return int(stamp), int(called)


@pytest.mark.parametrize("http", ["h11", "auto"])
def test_each_request_is_stamped_between_its_send_and_the_app_call(http: str) -> None:
    with LoopbackServer(StampApp(), options={"http": http}) as server:
        before_connect = time.perf_counter_ns()
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            stamp, called = ask(sock, server.port)
            assert before_connect <= stamp <= called
            # A later request on the same connection counts from its own send, not the
            # accept: the connection idled well past the first-request window first.
            time.sleep(0.08)
            before_send = time.perf_counter_ns()
            second, called = ask(sock, server.port)
            assert before_send <= second <= called


def test_protocol_names() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert stamped_protocol("h11") is StampedH11Protocol
    assert issubclass(stamped_protocol("auto"), HttpToolsProtocol)  # a declared dependency
    assert stamped_protocol("httptools") is stamped_protocol("auto")
    with pytest.raises(ValueError, match="unknown HTTP protocol 'h3'"):
        stamped_protocol("h3")


def test_an_unstamped_scope_has_no_arrival() -> None:
    assert received_ns({"type": "http"}) is None
    assert received_ns({"extensions": {RECEIVED: {"ns": 7}}}) == 7


def fd_table_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("FDSize:"):
            return int(line.split()[1])
    raise AssertionError("no FDSize in /proc/self/status")


@linux_only
def test_reserving_descriptors_grows_the_table_and_closes_nothing() -> None:
    kept = os.open(os.devnull, os.O_RDONLY)
    try:
        room = reserve_descriptors(4096)
        assert room == 4096
        assert fd_table_size() >= 4096
        os.fstat(kept)  # still open: the probe never lands on a descriptor in use
        highest = os.open(os.devnull, os.O_RDONLY)
        os.close(highest)
        assert highest < 4000  # the copy that grew the table was closed again
    finally:
        os.close(kept)


@linux_only
def test_the_command_line_lifts_a_low_open_files_limit() -> None:
    script = textwrap.dedent(
        """
        import resource
        from streamtape.simulator.fdtable import raise_descriptor_limit
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
        print(raise_descriptor_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], wanted)
        """
    )

    def low_limit() -> None:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=low_limit,
    ).stdout.split()
    new, now, wanted = (int(x) for x in out)
    assert new == now == wanted > 256
