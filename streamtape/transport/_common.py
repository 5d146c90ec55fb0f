"""What the recording and the replay transports share: the cassette argument, checked early."""

from __future__ import annotations

import os

from streamtape.core.cassette import Cassette
from streamtape.core.cassette_paths import require_readable, require_writable

CassetteLike = Cassette | str | os.PathLike[str]


def as_cassette(cassette: CassetteLike) -> Cassette:
    return cassette if isinstance(cassette, Cassette) else Cassette.open(cassette)


def cassette_to_write(cassette: CassetteLike) -> Cassette:
    """The cassette a recorder appends to; fails now, naming the path, if it cannot."""
    require_writable(cassette.path if isinstance(cassette, Cassette) else cassette)
    return as_cassette(cassette)


def cassette_to_read(cassette: CassetteLike) -> Cassette:
    """The cassette a replayer serves; fails now, naming the path, if it is missing."""
    path = cassette.path if isinstance(cassette, Cassette) else cassette
    require_readable(path)
    return as_cassette(cassette)
