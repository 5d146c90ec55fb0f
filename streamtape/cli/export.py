"""``streamtape export``: HAR 1.2 for devtools, Parquet tables for query engines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from streamtape import __version__
from streamtape.analysis.har import har_log
from streamtape.analysis.parquet import export_parquet
from streamtape.analysis.records import cassette_files
from streamtape.cli._common import echo_json, friendly, json_option, progress_callback


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--har", "har", type=click.Path(dir_okay=False), help="Write a HAR 1.2 file (- for stdout)."
)
@click.option(
    "--parquet",
    "parquet",
    type=click.Path(file_okay=False),
    help="Write exchanges.parquet and reads.parquet into this folder (needs pyarrow).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes (default: every core).",
)
@json_option
@friendly
def export(
    paths: tuple[str, ...], har: str | None, parquet: str | None, jobs: int | None, as_json: bool
) -> None:
    """Export the exchanges of PATHS (cassettes or folders) as HAR or Parquet.

    HAR keeps each read's arrival time in the `_streamtape` field of every entry;
    the Parquet tables join on (file, number).
    """
    if (har is None) == (parquet is None):
        raise click.ClickException("choose one of --har FILE or --parquet DIR")
    files = cassette_files(paths)
    if har is not None:
        document = har_log(files, creator_version=__version__)
        text = json.dumps(document, indent=1, ensure_ascii=False)
        if har == "-":
            click.echo(text)
            return
        Path(har).write_text(text + "\n", encoding="utf-8")
        facts = {"har": har, "entries": len(document["log"]["entries"])}
    else:
        assert parquet is not None
        with progress_callback(len(files), "exporting") as tick:
            counts = export_parquet(files, parquet, jobs=jobs, on_done=tick)
        facts = {"parquet": parquet, **counts}
    if as_json:
        echo_json(facts)
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in facts.items()))
