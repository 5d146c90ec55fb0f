"""``streamtape import``: vcrpy / pytest-recording cassettes into ``.tape`` files."""

from __future__ import annotations

from pathlib import Path

import click

from streamtape.analysis.vcr_import import read_vcr, vcr_files
from streamtape.cli._common import friendly
from streamtape.core.cassette import write_cassette
from streamtape.core.redact import Redactor


def _target(source: Path, root: Path | None, out: Path | None) -> Path:
    if out is None:
        return source.with_suffix(".tape")
    if root is None:  # one file named on the command line
        return out if out.suffix == ".tape" else out / source.with_suffix(".tape").name
    return out / source.relative_to(root).with_suffix(".tape")


@click.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(), help="output .tape file or folder")
@click.option(
    "--gap",
    type=float,
    default=0.0,
    show_default=True,
    help="seconds between replayed SSE events (vcrpy kept no timing; 0 = instant)",
)
@click.option("--force", is_flag=True, help="replace .tape files that exist")
@friendly
def import_vcr(sources: tuple[str, ...], out: str | None, gap: float, force: bool) -> None:
    """Convert vcrpy / pytest-recording YAML or JSON cassettes (files or folders).

    Each becomes a .tape beside it (or under --out, keeping the folder layout), with
    secrets redacted as the recorder would.
    """
    if gap < 0:
        raise click.BadParameter("must be >= 0", param_hint="--gap")
    redactor = Redactor()
    out_path = Path(out) if out is not None else None
    jobs: list[tuple[Path, Path]] = []
    for name in sources:
        source = Path(name)
        root = source if source.is_dir() else None
        jobs += [(f, _target(f, root, out_path)) for f in vcr_files([source])]
    for _, target in jobs:
        if target.exists() and not force:
            raise click.ClickException(f"{target}: already exists; pass --force to replace it")
    for source, target in jobs:
        exchanges = [redactor.apply(ex) for ex in read_vcr(source, gap_s=gap)]
        target.parent.mkdir(parents=True, exist_ok=True)
        write_cassette(target, exchanges)
        click.echo(f"{source} -> {target}: {len(exchanges)} exchange(s)")
