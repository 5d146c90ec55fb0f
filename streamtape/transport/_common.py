"""What the recording and the replay transports share: the cassette argument."""

from __future__ import annotations

import os

from streamtape.core.cassette import Cassette

CassetteLike = Cassette | str | os.PathLike[str]


def as_cassette(cassette: CassetteLike) -> Cassette:
    return cassette if isinstance(cassette, Cassette) else Cassette.open(cassette)
