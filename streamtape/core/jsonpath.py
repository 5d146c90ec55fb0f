"""Dotted paths into JSON bodies (``messages.0.content``, ``metadata.trace_id``), one reading.

Matching ignores fields by such paths and redaction replaces them, so both must agree
on what a path names: a segment of digits indexes a list, any other segment applied to
a list applies to every item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

Path = tuple[str, ...]


def split_path(dotted: str) -> Path:
    """``"a.b.0"`` -> ``("a", "b", "0")``; raises ValueError for a path with no segment."""
    parts = tuple(p for p in dotted.split(".") if p)
    if not parts:
        raise ValueError(f"empty field path {dotted!r}")
    return parts


def locations(obj: Any, parts: Sequence[str]) -> Iterator[tuple[dict[str, Any] | list[Any], Any]]:
    """Every ``(container, key)`` that ``parts`` names in ``obj`` and that exists."""
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if isinstance(obj, dict):
        if head in obj:
            if rest:
                yield from locations(obj[head], rest)
            else:
                yield obj, head
    elif isinstance(obj, list):
        if head.isdigit():
            i = int(head)
            if i < len(obj):
                if rest:
                    yield from locations(obj[i], rest)
                else:
                    yield obj, i
        else:
            for item in obj:
                yield from locations(item, parts)


def remove_path(obj: Any, parts: Sequence[str]) -> None:
    """Delete what ``parts`` names (a list item becomes None, so indices stay put)."""
    for container, key in list(locations(obj, parts)):
        if isinstance(container, dict):
            container.pop(key, None)
        else:
            container[key] = None


def replace_path(obj: Any, parts: Sequence[str], placeholder: str) -> bool:
    """Replace every non-null value ``parts`` names by ``placeholder``; whether any changed."""
    changed = False
    for container, key in list(locations(obj, parts)):
        value = container[key]
        if value is not None and value != placeholder:
            container[key] = placeholder
            changed = True
    return changed
