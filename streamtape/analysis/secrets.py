"""Credentials in cassettes already on disk: find them (``scan``), scrub them (``redact``).

Redaction uses the recorder's rules (`Redactor`), then replaces whatever is still
credential-shaped, in the request and in the response body, since a cassette from
before a rule existed must come out clean. The rewrite is atomic: the new cassette
is written beside the old one and renamed over it, so a crash leaves the original.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import msgspec

from streamtape.core.cassette import Cassette, write_cassette
from streamtape.core.exchange import Exchange, Read
from streamtape.core.redact import PLACEHOLDER, Redactor
from streamtape.core.scan import scan_exchange
from streamtape.core.scrub import mask, scrub_shapes
from streamtape.core.splice import splice_reads

__all__ = ["Leak", "RedactReport", "redact_cassette", "redact_exchange", "scan_cassette"]


class Leak(msgspec.Struct, frozen=True, kw_only=True):
    """A credential-shaped string: file, exchange (from 1), field and kind, never the value."""

    file: str
    number: int
    field: str
    kind: str
    offset: int


class RedactReport(msgspec.Struct, kw_only=True):
    file: str
    exchanges: int
    changed: int
    """Exchanges whose bytes changed."""
    fields: list[str]
    """What was replaced (``request.header:authorization``, ``response.body:pattern`` ...)."""


def scan_cassette(path: str | os.PathLike[str]) -> list[Leak]:
    """Every credential-shaped string in a cassette, response bodies included."""
    leaks = []
    for number, exchange in enumerate(Cassette.open(path), start=1):
        for f in scan_exchange(exchange, response_body=True):
            leaks.append(
                Leak(file=str(path), number=number, field=f.field, kind=f.kind, offset=f.offset)
            )
    return leaks


def _scrub_reads(reads: list[Read]) -> list[Read] | None:
    """The reads with matches masked in place (same length: boundaries stay); None if clean."""
    _, spans = scrub_shapes(b"".join(r.data for r in reads))
    if not spans:
        return None
    return splice_reads(reads, [(start, end, mask(end - start)) for start, end, _ in spans])


def _scrub_request(exchange: Exchange, placeholder: str) -> tuple[Exchange, list[str]]:
    req = exchange.request
    names: list[str] = []
    headers = []
    for name, value in req.headers:
        clean, spans = scrub_shapes(value.encode("utf-8", "surrogateescape"))
        if spans:
            names.append(f"request.header:{name.lower()}")
            value = clean.decode("utf-8", "surrogateescape")
        headers.append((name, value))
    url, url_spans = scrub_shapes(req.url.encode())
    body, body_spans = scrub_shapes(req.body)
    names += ["request.url:pattern"] * bool(url_spans) + ["request.body:pattern"] * bool(body_spans)
    if not names:
        return exchange, []
    request = msgspec.structs.replace(req, headers=headers, url=url.decode(), body=body)
    return msgspec.structs.replace(exchange, request=request), names


def redact_exchange(
    exchange: Exchange, redactor: Redactor, placeholder: str = PLACEHOLDER
) -> Exchange:
    """The recorder's redaction, then every remaining credential-shaped string replaced."""
    out = redactor.apply(exchange)
    out, names = _scrub_request(out, placeholder)
    reads = _scrub_reads(out.reads)
    if reads is not None:
        out = msgspec.structs.replace(out, reads=reads)
        names.append("response.body:pattern")
    if names:
        redacted = [*out.redacted, *(n for n in names if n not in out.redacted)]
        out = msgspec.structs.replace(out, redacted=redacted)
    return out


def redact_cassette(
    path: str | os.PathLike[str],
    *,
    redactor: Redactor | None = None,
) -> RedactReport:
    """Rewrite ``path`` with secrets scrubbed, atomically; unchanged files are not rewritten."""
    rules = redactor or Redactor(scan=False)
    tape = Cassette.open(path)
    report = RedactReport(file=str(path), exchanges=0, changed=0, fields=[])

    def scrubbed() -> Iterator[Exchange]:
        for exchange in tape:
            clean = redact_exchange(exchange, rules)
            report.exchanges += 1
            if clean != exchange:
                report.changed += 1
                report.fields += [
                    n
                    for n in clean.redacted
                    if n not in exchange.redacted and n not in report.fields
                ]
            yield clean

    if not any(
        scan_exchange(e, response_body=True) or redact_exchange(e, rules) != e for e in tape
    ):
        report.exchanges = sum(1 for _ in tape.entries())
        return report
    write_cassette(path, scrubbed())
    return report
