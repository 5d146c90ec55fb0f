"""Commands that look inside one cassette: ls, show, cat, decode."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from streamtape.cli._common import existing, friendly, report_tail
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange


@click.command("ls")
@click.argument("cassette", type=click.Path(dir_okay=False))
@friendly
def list_exchanges(cassette: str) -> None:
    """List the exchanges of CASSETTE, one line each (reads only the index)."""
    tape = existing(cassette)
    count = 0
    for number, entry in enumerate(tape.entries()):
        count += 1
        when = datetime.fromtimestamp(entry.started_at_ns / 1e9, tz=timezone.utc)
        click.echo(
            f"{number:>4}  {when:%Y-%m-%d %H:%M:%S}  {entry.method:<6} {entry.status:>3}  "
            f"{entry.duration_ns / 1e6:>8.1f} ms  {entry.reads:>5} reads  "
            f"{entry.body_bytes:>8} B  {entry.outcome.value:<14} {entry.url}"
        )
    report_tail(tape)
    if count == 0:
        click.echo("(no exchanges)")


def _pick(tape: Cassette, index: int) -> Exchange:
    for number, exchange in enumerate(tape):
        if number == index:
            return exchange
    raise click.ClickException(f"{tape.path}: no exchange #{index} (see `streamtape ls`)")


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@friendly
def show(cassette: str, index: int) -> None:
    """Show exchange INDEX of CASSETTE: request, response headers and read timing."""
    exchange = _pick(existing(cassette), index)
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


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@friendly
def cat(cassette: str, index: int) -> None:
    """Write the exact response body bytes of exchange INDEX to stdout."""
    exchange = _pick(existing(cassette), index)
    sys.stdout.buffer.write(exchange.body)
    sys.stdout.buffer.flush()


@click.command()
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.argument("index", type=int, default=0)
@friendly
def decode(cassette: str, index: int) -> None:
    """Reassemble exchange INDEX into a full completion object and print it as JSON."""
    from streamtape.formats import assemble

    exchange = _pick(existing(cassette), index)
    completion = assemble(exchange)
    click.echo(json.dumps(completion.to_dict(), indent=2, ensure_ascii=False))
