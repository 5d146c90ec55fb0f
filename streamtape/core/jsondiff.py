"""Where two JSON values differ, as paths: the structural diff that ``diff`` reports.

Pure and format-blind: dicts compare by key, lists by position, anything else by value
and type (so ``1`` and ``1.0`` and ``true`` differ, as they do on the wire).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

__all__ = ["MISSING", "JSONPath", "json_changes", "render_path"]

JSONPath = tuple[str | int, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Stands for the side of a change where the key or item does not exist."""


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def json_changes(a: Any, b: Any, path: JSONPath = ()) -> Iterator[tuple[JSONPath, Any, Any]]:
    """Every leaf where ``a`` and ``b`` differ, as ``(path, a_value, b_value)``."""
    if _same(a, b):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            yield from json_changes(a.get(key, MISSING), b.get(key, MISSING), (*path, key))
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            left = a[i] if i < len(a) else MISSING
            right = b[i] if i < len(b) else MISSING
            yield from json_changes(left, right, (*path, i))
        return
    yield path, a, b


def render_path(path: JSONPath, root: str = "") -> str:
    """``root.key[0].name`` for a path."""
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
