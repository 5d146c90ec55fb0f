"""`streamtape record` (the recording proxy) and `streamtape serve` (the replay server).

Both run in the foreground until SIGTERM or Ctrl-C: they stop accepting, let open
streams finish within the grace period (the proxy marks and writes the rest), close
the cassette and say what was written. A second signal stops at once.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import click

from streamtape.cli._common import friendly
from streamtape.core.exchange import Exchange, Outcome, RecordedRequest
from streamtape.core.fault_spec import GRAMMAR
from streamtape.server.proxy import RecordingProxy
from streamtape.server.replay import MODES, ReplayServer
from streamtape.server.run import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    exposure_warning,
    loopback_server,
    parse_listen,
)
from streamtape.simulator.fdtable import raise_descriptor_limit
from streamtape.simulator.idlegc import defer_young_collections
from streamtape.simulator.runner import LoopbackServer


def exchange_line(exchange: Exchange) -> str:
    """One line per exchange: method, path, status, time to first byte, duration, reads."""
    path = urlsplit(exchange.url).path or "/"
    ttft = f"{exchange.reads[0].t_ns / 1e6:.1f} ms" if exchange.reads else "-"
    status = str(exchange.status) if exchange.status else "---"
    line = (
        f"{exchange.method} {path} {status} ttft {ttft} "
        f"took {exchange.end_ns / 1e6:.1f} ms {len(exchange.reads)} reads"
    )
    if exchange.outcome is not Outcome.COMPLETE:
        line += f" [{exchange.outcome.value}{': ' + exchange.error if exchange.error else ''}]"
    return line


def _listen(listen: str | None) -> tuple[str, int]:
    host, port = parse_listen(listen) if listen is not None else (DEFAULT_HOST, DEFAULT_PORT)
    warning = exposure_warning(host, port)
    if warning is not None:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    return host, port


def settle_heap() -> None:
    """Move everything alive at start-up out of the collector's sight (``gc.freeze``).

    Why: a server process holds tens of thousands of long-lived objects (modules,
    the recordings' index); a full collection walking them all stalls every open
    stream for tens of milliseconds. Frozen, the collector walks only what requests
    create, and the servers walk that when no request is in flight.
    """
    gc.collect()
    gc.freeze()
    defer_young_collections()


def _run(server: LoopbackServer, banner: Callable[[], str], stopping: Callable[[], str]) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (a second signal: at once)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            server.force_exit()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    raise_descriptor_limit()
    try:
        try:
            server.start()
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}"
            ) from exc
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from exc
        settle_heap()
        click.echo(banner(), err=True)
        stop.wait()
        click.echo(stopping(), err=True)
        server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("record")
@click.option(
    "--upstream", required=True, help="Base URL to forward to, e.g. https://api.openai.com"
)
@click.option("--cassette", required=True, type=click.Path(dir_okay=False), help="Where to record.")
@click.option("--listen", help=f"HOST:PORT to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}).")
@click.option(
    "--grace", default=10.0, show_default=True, help="Seconds open streams get at shutdown."
)
@click.option(
    "--timeout", default=600.0, show_default=True, help="Seconds to wait for the upstream."
)
@click.option("--quiet", is_flag=True, help="No line per exchange.")
@friendly
def record(
    upstream: str, cassette: str, listen: str | None, grace: float, timeout: float, quiet: bool
) -> None:
    """Run a recording proxy: point any client's base URL here to record its exchanges.

    Every read reaches the client as it arrives; credentials are forwarded, never written.
    """
    host, port = _listen(listen)

    def log(exchange: Exchange) -> None:
        click.echo(exchange_line(exchange), err=True)

    def failed(exc: Exception) -> None:
        click.secho(f"error: an exchange was not recorded: {exc}", fg="red", err=True)

    proxy = RecordingProxy(
        upstream,
        cassette,
        timeout=timeout,
        on_exchange=None if quiet else log,
        on_error=failed,
    )
    server = loopback_server(proxy, host, port, grace, name="streamtape-proxy")
    try:
        _run(
            server,
            lambda: (
                f"streamtape: recording {server.url} -> {proxy.upstream} into {cassette} "
                "(Ctrl-C to stop)"
            ),
            lambda: f"streamtape: stopping; {proxy.open_streams} open stream(s) get {grace:g} s",
        )
    finally:
        proxy.close()
    click.echo(f"streamtape: wrote {proxy.written} exchange(s) to {cassette}", err=True)


@click.command("serve")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--listen", help=f"HOST:PORT to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}).")
@click.option(
    "--pacing", default="original", show_default=True, help="original, instant or a speed."
)
@click.option("--max-gap", type=float, help="Cap every recorded gap at this many seconds.")
@click.option(
    "--miss-status", default=404, show_default=True, help="Status of an unmatched request."
)
@click.option("--upstream", help="Forward what the mode records to this base URL.")
@click.option("--mode", type=click.Choice(MODES), default="none", show_default=True)
@click.option("--record-to", type=click.Path(dir_okay=False), help="Cassette new recordings go to.")
@click.option("--ignore-field", "ignore_fields", multiple=True, help="JSON body path to ignore.")
@click.option("--ignore-query", multiple=True, help="Query parameter to ignore.")
@click.option("--match-on", help="Comma-separated key parts (method,host,path,query,body).")
@click.option("--allow-playback-repeats", is_flag=True, help="Repeat the last answer when used up.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="Inject a fault into the replies (repeatable): cut:token=N, status:429:attempts=2, "
    "stall:2:event=5 ... (`streamtape serve --fault help` shows the grammar).",
)
@click.option("--fault-seed", default=0, show_default=True, help="Seed of the faults' choices.")
@click.option("--quiet", is_flag=True, help="No line per miss or recorded exchange.")
@friendly
def serve(
    paths: tuple[str, ...],
    listen: str | None,
    pacing: str,
    max_gap: float | None,
    miss_status: int,
    upstream: str | None,
    mode: str,
    record_to: str | None,
    ignore_fields: tuple[str, ...],
    ignore_query: tuple[str, ...],
    match_on: str | None,
    allow_playback_repeats: bool,
    faults: tuple[str, ...],
    fault_seed: int,
    quiet: bool,
) -> None:
    """Run a replay server over cassette files and folders, at the recorded pacing."""
    if "help" in faults:
        click.echo(GRAMMAR)
        return
    host, port = _listen(listen)

    def recorded(exchange: Exchange) -> None:
        click.echo(f"recorded {exchange_line(exchange)}", err=True)

    def missed(request: RecordedRequest, why: str) -> None:
        click.echo(f"miss {request.method} {urlsplit(request.url).path}: {why}", err=True)

    matching: dict[str, Any] = {"allow_playback_repeats": allow_playback_repeats}
    if match_on is not None:
        matching["match_on"] = [part.strip() for part in match_on.split(",") if part.strip()]
    app = ReplayServer(
        paths,
        pacing=pacing,
        max_gap=max_gap,
        miss_status=miss_status,
        upstream=upstream,
        mode=mode,
        record_to=record_to,
        on_exchange=None if quiet else recorded,
        on_miss=None if quiet else missed,
        ignore_fields=ignore_fields,
        ignore_query=ignore_query,
        faults=list(faults) or None,
        seed=fault_seed,
        **matching,
    )
    for path, tail in app.library.tails:
        click.secho(f"warning: {path}: {tail}", fg="yellow", err=True)
    server = loopback_server(app, host, port, 2.0, name="streamtape-replay")
    library = app.library
    try:
        _run(
            server,
            lambda: (
                f"streamtape: replaying {len(library)} exchange(s) from "
                f"{len(library.files)} cassette(s) on {server.url} (OpenAI base URL "
                f"{server.base_url}; mode {app.mode}; Ctrl-C to stop)"
            ),
            lambda: "streamtape: stopping",
        )
    finally:
        app.close()
