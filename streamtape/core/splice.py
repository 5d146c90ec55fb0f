"""Edit a response body that is split into timed reads, keeping each read's arrival time.

Scrubbing a secret out of a recorded body (``streamtape redact``) replaces bytes with
a placeholder of another length; the read boundaries move with the text so every
read keeps its time and the bytes around the edit stay in the read they came in.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamtape.core.exchange import Read

__all__ = ["splice_reads"]


def splice_reads(reads: Sequence[Read], edits: Sequence[tuple[int, int, bytes]]) -> list[Read]:
    """The reads with body bytes ``[start, end)`` replaced by each edit's bytes.

    Edits are body offsets, sorted and not overlapping. A read boundary inside an edited
    span moves to the end of the replacement.
    """
    body = b"".join(r.data for r in reads)
    pieces, pos = [], 0
    for start, end, new in edits:
        if start < pos or end < start or end > len(body):
            raise ValueError(f"edit [{start}, {end}) overlaps another or lies outside the body")
        pieces += [body[pos:start], new]
        pos = end
    pieces.append(body[pos:])
    new_body = b"".join(pieces)

    def moved(offset: int) -> int:
        delta = 0
        for start, end, new in edits:
            if offset <= start:
                break
            if offset < end:
                return start + delta + len(new)
            delta += len(new) - (end - start)
        return offset + delta

    out, seen, cut = [], 0, 0
    for r in reads:
        seen += len(r.data)
        end = moved(seen)
        out.append(Read(r.t_ns, new_body[cut:end]))
        cut = end
    return out
