"""Small text renderings the commands share: numbers, tables, sparklines, word diffs.

Colour goes through ``click.style``; ``click.echo`` drops it when output is not a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

_BLOCKS = "▁▂▃▄▅▆▇█"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Aligned columns with a bold header row; ``right`` holds right-aligned column indexes."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join(parts).rstrip()

    return [click.style(line(header), bold=True), *(line(r) for r in rows)]


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """One block per value (the largest of each bucket when there are more than ``width``)."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [
            max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)])
            for i in range(width)
        ]
    top = max(values) or 1.0
    return "".join(
        _BLOCKS[min(len(_BLOCKS) - 1, int(v / top * (len(_BLOCKS) - 1) + 0.5))] for v in values
    )


def _shorten(text: str, head: int, tail: int) -> str:
    words = text.split(" ")
    if len(words) <= head + tail + 1:
        return text
    kept_head = " ".join(words[:head]) + " " if head else ""
    kept_tail = " " + " ".join(words[len(words) - tail :]) if tail else ""
    return f"{kept_head}…{kept_tail}"


def word_diff(ops: Sequence[tuple[str, str]], context: int = 6) -> str:
    """git's ``--word-diff`` look: ``[-gone-]{+new+}``, long equal runs shortened."""
    out: list[str] = []
    for i, (op, text) in enumerate(ops):
        if op == "=":
            head = 0 if i == 0 else context
            tail = 0 if i == len(ops) - 1 else context
            out.append(_shorten(text, head, tail))
        elif op == "-":
            out.append(click.style(f"[-{text}-]", fg="red"))
        else:
            out.append(click.style(f"{{+{text}+}}", fg="green"))
    return "".join(out)
