"""Commands for credentials in existing cassettes: scan (exit 1 when found) and redact."""

from __future__ import annotations

import click

from streamtape.analysis.records import cassette_files
from streamtape.analysis.secrets import redact_cassette, scan_cassette
from streamtape.cli._common import echo_json, friendly, json_option, progress_callback


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
@friendly
def scan(paths: tuple[str, ...], as_json: bool) -> None:
    """Find credential-shaped strings in cassettes; exit 1 when any is found.

    Names the file, the exchange (from 1) and the field, never the value. Scans
    requests, response headers and response bodies.
    """
    files = cassette_files(paths)
    leaks = []
    with progress_callback(len(files), "scanning") as tick:
        for file in files:
            leaks += scan_cassette(file)
            tick(1)
    if as_json:
        echo_json({"cassettes": len(files), "leaks": leaks})
    else:
        for leak in leaks:
            click.echo(
                click.style(f"{leak.file}#{leak.number}", bold=True)
                + f"  {leak.field} at byte {leak.offset}: "
                + click.style(leak.kind, fg="red")
            )
        verdict = f"{len(leaks)} credential-shaped string(s) in {len(files)} cassette(s)"
        click.secho(verdict, fg="red" if leaks else "green", err=bool(leaks))
        if leaks:
            click.echo("scrub them with `streamtape redact PATH`", err=True)
    if leaks:
        raise SystemExit(1)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
@friendly
def redact(paths: tuple[str, ...], as_json: bool) -> None:
    """Scrub credentials from cassettes in place, with the recorder's redaction rules.

    Also replaces whatever still looks like a credential (in requests and response
    bodies). Each file is rewritten atomically: a crash leaves the original intact.
    """
    files = cassette_files(paths)
    reports = []
    with progress_callback(len(files), "redacting") as tick:
        for file in files:
            reports.append(redact_cassette(file))
            tick(1)
    if as_json:
        echo_json(reports)
        return
    for r in reports:
        what = ", ".join(r.fields) if r.fields else "nothing to redact"
        click.echo(f"{r.file}: {r.changed} of {r.exchanges} exchange(s) rewritten ({what})")
