"""What the recording and the replay transports share: the cassette argument and the clock."""

from __future__ import annotations

import os
from collections.abc import Callable

from streamtape.core.cassette import Cassette

Clock = Callable[[], int]
CassetteLike = Cassette | str | os.PathLike[str]


def as_cassette(cassette: CassetteLike) -> Cassette:
    return cassette if isinstance(cassette, Cassette) else Cassette.open(cassette)
