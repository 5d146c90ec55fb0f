"""The ``streamtape`` command: the only package that prints or turns errors into exit codes.

One module per theme holds its commands; the group loads a module only when one of
its commands runs (or ``--help`` lists them), so ``streamtape ls`` never imports the
servers, the simulator or the analysis extras.
"""

from __future__ import annotations

import importlib

import click

from streamtape import __version__

COMMANDS: dict[str, str] = {
    "demo": "demo:demo",
    "record": "servers:record",
    "serve": "servers:serve",
    "import": "importing:import_vcr",
    "ls": "inspect:list_exchanges",
    "show": "inspect:show",
    "cat": "inspect:cat",
    "decode": "inspect:decode",
    "repair": "repair:repair_command",
    "diff": "compare:diff",
    "stats": "compare:stats",
    "scan": "secrets:scan",
    "redact": "secrets:redact",
    "export": "export:export",
    "report": "compare:report",
}
"""Command name -> ``module:attribute`` under ``streamtape.cli``."""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command = getattr(importlib.import_module(f"streamtape.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtape")
def main() -> None:
    """Record, replay, reassemble and diff the SSE streams of LLM APIs.

    Start with `streamtape demo`: it records a simulated upstream on loopback
    (no API key, no network), replays it at the original pacing and summarises it.
    """
