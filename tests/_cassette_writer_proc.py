"""A writer process for the cassette crash and multi-process tests.

Usage: python _cassette_writer_proc.py PATH FIRST COUNT BODY_BYTES

Appends exchanges FIRST .. FIRST+COUNT-1 (COUNT < 0: forever) and prints each
index after its append returns, so the parent knows what is surely on disk.
"""

from __future__ import annotations

import random
import sys

from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest


def make_exchange(i: int, body_bytes: int) -> Exchange:
    """Exchange number ``i``: deterministic, so the parent can rebuild it to compare."""
    rng = random.Random(i)
    reads: list[Read] = []
    t = rng.randrange(1_000_000, 500_000_000)
    remaining = body_bytes
    while remaining > 0:
        n = min(remaining, rng.randrange(1, 4096))
        reads.append(Read(t, rng.randbytes(n)))
        remaining -= n
        t += rng.randrange(10_000, 50_000_000)
    return Exchange(
        request=RecordedRequest(method="POST", url=f"http://127.0.0.1/v1/chat/completions?n={i}"),
        status=200,
        response_headers=[("content-type", "text/event-stream")],
        reads=reads,
        started_at_ns=1_700_000_000_000_000_000 + i,
        end_ns=t,
        outcome=Outcome.COMPLETE,
    )


def main() -> None:
    path, first, count, body_bytes = sys.argv[1], *map(int, sys.argv[2:5])
    cassette = Cassette.open(path)
    i = first
    while count < 0 or i < first + count:
        cassette.append(make_exchange(i, body_bytes))
        print(i, flush=True)
        i += 1
    cassette.close()


if __name__ == "__main__":
    main()
