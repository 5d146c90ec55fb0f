"""What every command shares: one-line errors, opening a cassette, JSON output, progress."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from streamtape.core.cassette import Cassette
from streamtape.errors import StreamtapeError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the same facts as JSON (for scripts and CI)."
)


class CommandError(click.ClickException):
    """A one-line error with a chosen exit status (``diff`` uses 2: 1 means 'they differ')."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def friendly_exit(code: int) -> Callable[[F], F]:
    """Turn our errors and missing files into one line on stderr and exit status ``code``."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except CommandError:
                raise
            except click.ClickException as exc:
                raise CommandError(exc.format_message(), code) from exc
            except StreamtapeError as exc:
                raise CommandError(_one_line(str(exc)), code) from exc
            except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
                raise CommandError(f"{exc.filename}: {exc.strerror}", code) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


friendly = friendly_exit(1)


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def existing(path: str) -> Cassette:
    if not Path(path).is_file():
        raise click.ClickException(f"{path}: no such cassette file")
    return Cassette.open(path)


def report_tail(cassette: Cassette) -> None:
    if cassette.tail is not None:
        click.secho(f"warning: {cassette.path}: {cassette.tail}", fg="yellow", err=True)


def echo_json(value: Any) -> None:
    """Print any msgspec-encodable value as indented JSON."""
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


@contextlib.contextmanager
def progress_callback(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A ``tick(n)`` callback that advances a progress bar on stderr (a terminal, long work)."""
    if length < 50 or not sys.stderr.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
