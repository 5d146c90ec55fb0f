"""Credential-named fields in bodies that are not parsed into a tree: multipart, deep JSON.

A multipart upload carries form fields next to its files, and a JSON body nested deeper
than the parser allows cannot be walked; both are still redacted by field name, with
every other byte left as it was. ``is_secret`` is the redactor's verdict on a name,
``echoes`` collects each replaced value so it is masked elsewhere too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec

from streamtape.core.scrub import Echoes

_BOUNDARY = re.compile(r'boundary=("[^"]+"|[^;\s]+)', re.I)
_PART_NAME = re.compile(rb'\bname="([^"]*)"', re.I)
_JSON_PAIR = re.compile(rb'("(?:[^"\\]|\\.)*")\s*:\s*("(?:[^"\\]|\\.)*")')


def redact_multipart(
    content_type: str,
    body: bytes,
    placeholder: str,
    is_secret: Callable[[str], bool],
    echoes: Echoes | None,
) -> tuple[bytes, list[str]]:
    """Credential-named fields (not files) of a multipart body replaced, the rest as is."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        return body, []
    delimiter = b"--" + found[1].strip('"').encode("latin-1")
    replacement = placeholder.encode()
    parts = body.split(delimiter)
    names: list[str] = []
    for i, part in enumerate(parts[1:], 1):
        head, sep, content = part.partition(b"\r\n\r\n")
        disposition = _PART_NAME.search(head)
        if not sep or disposition is None or b"filename=" in head:
            continue
        name = disposition[1].decode("utf-8", "replace")
        value = content.removesuffix(b"\r\n")
        if not value or value == replacement or not is_secret(name):
            continue
        parts[i] = head + sep + replacement + content[len(value) :]
        names.append(f"request.body:{name}")
        if echoes is not None:
            echoes.add(value.decode("utf-8", "surrogateescape"), f"request.body:{name}")
    return (delimiter.join(parts), names) if names else (body, [])


def redact_json_pairs(
    body: bytes,
    placeholder: str,
    is_secret: Callable[[str], bool],
    echoes: Echoes | None,
) -> tuple[bytes, list[str]]:
    """Credential-named ``"key": "string"`` pairs replaced in JSON text, at any depth."""
    names: list[str] = []
    quoted = msgspec.json.encode(placeholder)

    def replace(m: re.Match[bytes]) -> bytes:
        try:
            key, value = msgspec.json.decode(m[1]), msgspec.json.decode(m[2])
        except msgspec.DecodeError:
            return m[0]
        if not (isinstance(key, str) and isinstance(value, str)) or not value:
            return m[0]
        if value == placeholder or not is_secret(key):
            return m[0]
        names.append(f"request.body:{key}")
        if echoes is not None:
            echoes.add(value, f"request.body:{key}")
        return m[0][: m.start(2) - m.start()] + quoted

    out = _JSON_PAIR.sub(replace, body)
    return (out, list(dict.fromkeys(names))) if names else (body, [])
