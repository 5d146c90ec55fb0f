"""Convert vcrpy / pytest-recording cassettes (YAML or JSON) into exchanges.

vcrpy keeps each response body whole and no timing, so the timing is made up: every
read at offset 0 (instant replay), or, given ``gap_s``, one read per SSE event (or
per body, for anything else) ``gap_s`` apart. The bytes are vcrpy's, exactly; an
SSE body is split only at event boundaries, so joined reads equal the body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from streamtape.core.exchange import Exchange, Headers, Read, RecordedRequest
from streamtape.errors import StreamtapeError


class VcrImportError(StreamtapeError, ValueError):
    """A file is not a vcrpy cassette this importer understands."""


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise VcrImportError(f"{path}: not valid JSON: {exc}") from exc
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise VcrImportError(
            f"{path}: reading YAML cassettes needs PyYAML (pip install 'streamtape[vcr]')"
        ) from exc
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise VcrImportError(f"{path}: not valid YAML: {exc}") from exc


def _bytes(value: Any) -> bytes:
    """A vcrpy body: text, bytes (YAML ``!!binary``), a base64 map, or nothing."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, Mapping):
        if "base64_string" in value:
            return base64.b64decode(value["base64_string"])
        return _bytes(value.get("string"))
    raise VcrImportError(f"unexpected body of type {type(value).__name__}")


def _headers(value: Any) -> Headers:
    """vcrpy headers map each name to a list of values (or, in old files, one value)."""
    if not value:
        return []
    if not isinstance(value, Mapping):
        raise VcrImportError(f"headers must be a mapping, got {type(value).__name__}")
    pairs: Headers = []
    for name, values in value.items():
        for v in values if isinstance(values, list) else [values]:
            pairs.append((str(name), str(v)))
    return pairs


def _reads(body: bytes, headers: Headers, gap_ns: int) -> list[Read]:
    if not body:
        return []
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    if gap_ns <= 0 or "text/event-stream" not in ctype.lower():
        return [Read(gap_ns, body)]
    parts: list[bytes] = []
    start = 0
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in body:
            while (end := body.find(sep, start)) != -1:
                parts.append(body[start : end + len(sep)])
                start = end + len(sep)
            break
    if start < len(body):
        parts.append(body[start:])
    return [Read((i + 1) * gap_ns, part) for i, part in enumerate(parts)]


def _exchange(where: str, interaction: Any, gap_ns: int) -> Exchange:
    try:
        request, response = interaction["request"], interaction["response"]
        status = response["status"]
        code = int(status["code"] if isinstance(status, Mapping) else status)
    except (KeyError, TypeError, ValueError) as exc:
        raise VcrImportError(f"{where}: not a vcrpy interaction ({exc!r} missing)") from exc
    response_headers = _headers(response.get("headers"))
    reads = _reads(_bytes(response.get("body")), response_headers, gap_ns)
    return Exchange(
        request=RecordedRequest(
            method=str(request.get("method", "GET")).upper(),
            url=str(request.get("uri", "")),
            headers=_headers(request.get("headers")),
            body=_bytes(request.get("body")),
        ),
        status=code,
        response_headers=response_headers,
        reads=reads,
        headers_ns=0,
        end_ns=reads[-1].t_ns if reads else 0,
    )


def read_vcr(path: str | Path, *, gap_s: float = 0.0) -> list[Exchange]:
    """Every interaction of the vcrpy cassette at ``path``, as exchanges in file order."""
    path = Path(path)
    data = _load(path)
    interactions = data.get("interactions") if isinstance(data, Mapping) else None
    if not isinstance(interactions, list):
        raise VcrImportError(f"{path}: no 'interactions' list; is it a vcrpy cassette?")
    gap_ns = round(gap_s * 1e9)
    return [_exchange(f"{path}: interaction {i}", x, gap_ns) for i, x in enumerate(interactions)]


def vcr_files(paths: Iterable[str | Path]) -> list[Path]:
    """The cassette files named, with folders expanded to their .yaml/.yml/.json files."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml", ".json"))
        else:
            found.append(p)
    return found
