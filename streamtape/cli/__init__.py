"""The ``streamtape`` command: the only module that prints or turns errors into exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from streamtape import __version__
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.errors import StreamtapeError

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn our errors and missing files into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StreamtapeError as exc:
            raise click.ClickException(str(exc)) from exc
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc

    return wrapper  # type: ignore[return-value]


def _existing(path: str) -> Cassette:
    if not Path(path).is_file():
        raise click.ClickException(f"{path}: no such cassette file")
    return Cassette.open(path)


def _report_tail(cassette: Cassette) -> None:
    if cassette.tail is not None:
        click.secho(f"warning: {cassette.path}: {cassette.tail}", fg="yellow", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs.

    Start with `streamtape demo`: it records a simulated upstream on loopback
    (no API key, no network), replays it at the original pacing and summarises it.
    """


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default="streamtape-demo.tape",
    show_default=True,
    help="Where to write the cassette (overwritten).",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Speed of the simulated upstream (2 = twice as fast).",
)
@_friendly
def demo(out: str, speed: float) -> None:
    """Record a simulated OpenAI-compatible upstream, replay it, and summarise both."""
    from streamtape.cli.demo import run_demo

    run_demo(Path(out), speed=speed, echo=click.echo)


@main.command("ls")
@click.argument("cassette", type=click.Path(dir_okay=False))
@_friendly
def list_exchanges(cassette: str) -> None:
    """List the exchanges of CASSETTE, one line each (reads only the index)."""
    tape = _existing(cassette)
    count = 0
    for number, entry in enumerate(tape.entries()):
        count += 1
        when = datetime.fromtimestamp(entry.started_at_ns / 1e9, tz=timezone.utc)
        click.echo(
            f"{number:>4}  {when:%Y-%m-%d %H:%M:%S}  {entry.method:<6} {entry.status:>3}  "
            f"{entry.duration_ns / 1e6:>8.1f} ms  {entry.reads:>5} reads  "
            f"{entry.body_bytes:>8} B  {entry.outcome.value:<14} {entry.url}"
        )
    _report_tail(tape)
    if count == 0:
        click.echo("(no exchanges)")


def _pick(tape: Cassette, index: int) -> Exchange:
    for number, exchange in enumerate(tape):
        if number == index:
            return exchange
    raise click.ClickException(f"{tape.path}: no exchange #{index} (see `streamtape ls`)")


@main.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@_friendly
def show(cassette: str, index: int) -> None:
    """Show exchange INDEX of CASSETTE: request, response headers and read timing."""
    exchange = _pick(_existing(cassette), index)
    request = exchange.request
    click.echo(f"{request.method} {request.url}")
    for name, value in request.headers:
        click.echo(f"  {name}: {value}")
    if request.body:
        click.echo(f"  ({len(request.body)} body bytes)")
    click.echo(
        f"{exchange.http_version} {exchange.status}  after {exchange.headers_ns / 1e6:.1f} ms"
    )
    for name, value in exchange.response_headers:
        click.echo(f"  {name}: {value}")
    body = exchange.body
    click.echo(
        f"body: {len(body)} bytes in {len(exchange.reads)} reads, ended "
        f"{exchange.outcome.value} at {exchange.end_ns / 1e6:.1f} ms"
    )
    if exchange.error:
        click.echo(f"error: {exchange.error}")
    if exchange.redacted:
        click.echo(f"redacted: {', '.join(exchange.redacted)}")


@main.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@_friendly
def cat(cassette: str, index: int) -> None:
    """Write the exact response body bytes of exchange INDEX to stdout."""
    exchange = _pick(_existing(cassette), index)
    sys.stdout.buffer.write(exchange.body)
    sys.stdout.buffer.flush()


@main.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@_friendly
def decode(cassette: str, index: int) -> None:
    """Reassemble exchange INDEX into a full completion object and print it as JSON."""
    from streamtape.formats.openai_chat.assembler import assemble

    exchange = _pick(_existing(cassette), index)
    completion = assemble(exchange)
    click.echo(json.dumps(completion.to_dict(), indent=2, ensure_ascii=False))
