"""``streamtape repair``: keep every intact exchange of a damaged or cut cassette."""

from __future__ import annotations

import json
from pathlib import Path

import click
import msgspec

from streamtape.cli._common import friendly
from streamtape.core.cassette import Cassette, repair


@click.command("repair")
@click.argument("cassette", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Say what would be kept and dropped; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@friendly
def repair_command(cassette: str, dry_run: bool, as_json: bool) -> None:
    """Rewrite CASSETTE with every intact exchange, skipping damaged records.

    The new file replaces the old atomically (a crash mid-way leaves the original).
    Exit status 0 whether or not anything was dropped; 1 on an error.
    """
    if not Path(cassette).is_file():
        raise click.ClickException(f"{cassette}: no such cassette file")
    if dry_run:
        source = Cassette.open(cassette, on_corrupt="skip")
        kept = sum(1 for _ in source)
        damaged, tail, rewritten = source.damaged, source.tail, False
    else:
        report = repair(cassette)
        kept, damaged, tail, rewritten = report.kept, report.damaged, report.tail, report.rewritten
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": cassette,
                    "kept": kept,
                    "damaged": msgspec.to_builtins(damaged),
                    "tail": msgspec.to_builtins(tail),
                    "rewritten": rewritten,
                    "dry_run": dry_run,
                }
            )
        )
        return
    for damage in damaged:
        click.echo(f"{cassette}: {damage}")
    if tail is not None:
        click.echo(f"{cassette}: {tail}")
    if not damaged and tail is None:
        click.echo(f"{cassette}: intact, {kept} exchanges; nothing to do")
    elif dry_run:
        click.echo(f"{cassette}: would keep {kept} exchanges (dry run: nothing written)")
    else:
        click.echo(f"{cassette}: kept {kept} exchanges, rewrote the file")
