"""The ``streamtape`` command: the only package that prints or turns errors into exit codes.

One module per theme registers its commands on the group here.
"""

from __future__ import annotations

import click

from streamtape import __version__
from streamtape.cli import demo, inspect, servers


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs.

    Start with `streamtape demo`: it records a simulated upstream on loopback
    (no API key, no network), replays it at the original pacing and summarises it.
    """


main.add_command(demo.demo)
main.add_command(servers.record)
main.add_command(servers.serve)
for command in (inspect.list_exchanges, inspect.show, inspect.cat, inspect.decode):
    main.add_command(command)
