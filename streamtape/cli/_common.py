"""What every command shares: one-line errors, opening a cassette, reporting a cut tail."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from streamtape.core.cassette import Cassette
from streamtape.errors import StreamtapeError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
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


def existing(path: str) -> Cassette:
    if not Path(path).is_file():
        raise click.ClickException(f"{path}: no such cassette file")
    return Cassette.open(path)


def report_tail(cassette: Cassette) -> None:
    if cassette.tail is not None:
        click.secho(f"warning: {cassette.path}: {cassette.tail}", fg="yellow", err=True)
