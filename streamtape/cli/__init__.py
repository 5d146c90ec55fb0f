"""The ``streamtape`` command: the only package that prints or turns errors into exit codes.

One module per theme registers its commands on the group here.
"""

from __future__ import annotations

import click

from streamtape import __version__
from streamtape.cli import compare, demo, export, importing, inspect, repair, secrets, servers


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs.

    Start with `streamtape demo`: it records a simulated upstream on loopback
    (no API key, no network), replays it at the original pacing and summarises it.
    """


main.add_command(demo.demo)
main.add_command(importing.import_vcr)
main.add_command(servers.record)
main.add_command(servers.serve)
for command in (inspect.list_exchanges, inspect.show, inspect.cat, inspect.decode):
    main.add_command(command)
main.add_command(repair.repair_command)
main.add_command(compare.diff)
main.add_command(compare.stats)
main.add_command(secrets.scan)
main.add_command(secrets.redact)
main.add_command(export.export)
main.add_command(compare.report)
