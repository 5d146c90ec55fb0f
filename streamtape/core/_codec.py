"""The bytes of format v1: record framing, the stored Structs, and their codecs.

A record is a zstd skippable frame holding the index entry (a checksum, then msgpack)
followed by one zstd data frame holding the record's msgpack. The stored Structs are
``array_like``: their field order *is* the format, fixed for v1; msgspec's
schema-evolution rules (append fields with defaults) are the compatibility contract.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
import zstandard

from streamtape._version import __version__
from streamtape.core.exchange import Exchange, Headers, Outcome, Read, RecordedRequest
from streamtape.errors import CassetteCorruptError, CassetteError

FORMAT_VERSION: Final = 1
"""The newest cassette format this module reads and the one it writes."""
WRITER_VERSION: Final = __version__
"""streamtape's version, recorded in headers (kept here to avoid importing the package)."""
MAGIC: Final = "streamtape"
RECORD_MAGIC: Final = 0x184D2A5B
"""The zstd skippable-frame magic that opens every record."""
DEFAULT_LEVEL: Final = 3
"""zstd level: 3 is within 4 % of level 9's size at a seventh of its time per record."""

KIND_HEADER: Final = 0
KIND_EXCHANGE: Final = 1
MAGIC_BYTES: Final = struct.pack("<I", RECORD_MAGIC)
FRAME_HEAD = struct.Struct("<II")
CRC = struct.Struct("<I")
MAX_RECORD_BYTES: Final = 1 << 30
"""The largest record (decompressed) a writer writes and a reader accepts: 1 GiB.

A record holds both bodies of an exchange in memory at once, so this bounds what a
damaged or hostile length field can make a reader allocate."""
_PLAUSIBLE_RATIO: Final = 64
"""Declared sizes past 64x the compressed bytes are decompressed as a stream."""
MAX_INDEX_BYTES: Final = 1 << 20
"""Larger index payloads cannot come from a writer: the length field is damaged."""
POOL_SIZE: Final = 8


class CassetteHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first record of every cassette: what wrote it and in which format."""

    magic: str
    format_version: int
    writer_version: str
    created_at_ns: int


class _Framed(msgspec.Struct, array_like=True, frozen=True):
    """What every index entry opens with: the size and checksum of its data frame."""

    compressed_bytes: int
    """Size of the zstd data frame that follows the index frame."""
    raw_bytes: int
    """Size of the record's msgpack once decompressed (bounded before decompressing)."""
    crc32: int
    """Checksum of the data frame."""


class HeaderIndex(_Framed, tag=KIND_HEADER, frozen=True):
    magic: str
    format_version: int


class ExchangeIndex(_Framed, tag=KIND_EXCHANGE, frozen=True):
    """The index entry of an exchange as stored (format v1: this field order is fixed)."""

    method: str
    url: str
    status: int
    reads: int
    body_bytes: int
    started_at_ns: int
    headers_ns: int
    first_byte_ns: int
    """Offset of the first read, i.e. time to first byte; 0 when there were no reads."""
    duration_ns: int
    outcome: Outcome


class Entry(ExchangeIndex, array_like=False, tag=False, frozen=True, kw_only=True):
    """One exchange as the index describes it, read without decompressing the exchange.

    The stored index entry plus where its record is; the two added fields are never
    written, so the on-disk layout stays the v1 one.
    """

    offset: int
    """Byte offset of the record; ``Cassette.get(entry)`` reads the exchange there."""
    record_bytes: int
    """Size of the record on disk (index and data frames)."""


INDEX_FIELDS: Final = ExchangeIndex.__struct_fields__


class DiskExchange(msgspec.Struct, array_like=True):
    """An Exchange as stored: one body plus read sizes and time gaps (smaller, faster)."""

    method: str
    url: str
    request_headers: Headers
    request_body: bytes
    status: int
    response_headers: Headers
    read_gaps: list[int]
    read_sizes: list[int]
    body: bytes
    started_at_ns: int
    headers_ns: int
    end_ns: int
    outcome: Outcome
    error: str | None
    http_version: str
    redacted: list[str]


class DiskRequest(msgspec.Struct, array_like=True):
    """The leading fields of a ``DiskExchange``: msgspec skips the rest unbuilt.

    Why: a replay server matching on requests decodes thousands of records and needs
    none of their bodies or read lists.
    """

    method: str
    url: str
    request_headers: Headers
    request_body: bytes


Index = HeaderIndex | ExchangeIndex

ENCODER = msgspec.msgpack.Encoder()
INDEX_DECODER = msgspec.msgpack.Decoder(Index)
EXCHANGE_DECODER = msgspec.msgpack.Decoder(DiskExchange)
REQUEST_DECODER = msgspec.msgpack.Decoder(DiskRequest)
HEADER_DECODER = msgspec.msgpack.Decoder(CassetteHeader)

_T = TypeVar("_T")

DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError)


def frame(kind_index: Index, data: bytes) -> bytes:
    """One record: the index frame followed by the already-compressed data frame."""
    entry = ENCODER.encode(kind_index)
    head = FRAME_HEAD.pack(RECORD_MAGIC, len(entry) + 4) + CRC.pack(zlib.crc32(entry))
    return b"".join((head, entry, data))


def to_disk(ex: Exchange) -> DiskExchange:
    gaps: list[int] = []
    sizes: list[int] = []
    prev = 0
    for r in ex.reads:
        gaps.append(r.t_ns - prev)
        sizes.append(len(r.data))
        prev = r.t_ns
    req = ex.request
    return DiskExchange(
        req.method,
        req.url,
        req.headers,
        req.body,
        ex.status,
        ex.response_headers,
        gaps,
        sizes,
        b"".join(r.data for r in ex.reads),
        ex.started_at_ns,
        ex.headers_ns,
        ex.end_ns,
        ex.outcome,
        ex.error,
        ex.http_version,
        ex.redacted,
    )


def request_of(d: DiskRequest | DiskExchange) -> RecordedRequest:
    """The request fields of a stored record, as a ``RecordedRequest``."""
    return RecordedRequest(
        method=d.method, url=d.url, headers=d.request_headers, body=d.request_body
    )


def from_disk(d: DiskExchange) -> Exchange:
    """Rebuild the in-memory Exchange; raises ValueError if sizes and body disagree."""
    if len(d.read_gaps) != len(d.read_sizes) or sum(d.read_sizes) != len(d.body):
        raise ValueError("read sizes do not add up to the stored body")
    reads: list[Read] = []
    body = d.body
    t = 0
    pos = 0
    for gap, size in zip(d.read_gaps, d.read_sizes, strict=True):
        if size < 0:
            raise ValueError("negative read size")
        t += gap
        reads.append(Read(t, body[pos : pos + size]))
        pos += size
    return Exchange(
        request=request_of(d),
        status=d.status,
        response_headers=d.response_headers,
        reads=reads,
        started_at_ns=d.started_at_ns,
        headers_ns=d.headers_ns,
        end_ns=d.end_ns,
        outcome=d.outcome,
        error=d.error,
        http_version=d.http_version,
        redacted=d.redacted,
    )


class Codec:
    """Compresses records with a small pool of zstd contexts (a context is not thread-safe)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._pool: list[zstandard.ZstdCompressor] = []

    def compress(self, raw: bytes) -> bytes:
        try:
            cctx = self._pool.pop()
        except IndexError:
            cctx = zstandard.ZstdCompressor(
                level=self.level, write_checksum=True, write_content_size=True
            )
        try:
            return cctx.compress(raw)
        finally:
            if len(self._pool) < POOL_SIZE:
                self._pool.append(cctx)

    def header_record(self) -> bytes:
        header = CassetteHeader(
            magic=MAGIC,
            format_version=FORMAT_VERSION,
            writer_version=WRITER_VERSION,
            created_at_ns=time.time_ns(),
        )
        raw = ENCODER.encode(header)
        data = self.compress(raw)
        return frame(
            HeaderIndex(len(data), len(raw), zlib.crc32(data), MAGIC, FORMAT_VERSION), data
        )

    def exchange_record(self, ex: Exchange) -> bytes:
        raw = ENCODER.encode(to_disk(ex))
        if len(raw) > MAX_RECORD_BYTES:
            raise CassetteError(
                f"an exchange of {len(raw)} bytes is larger than a cassette record may be "
                f"({MAX_RECORD_BYTES} bytes); it was not recorded"
            )
        data = self.compress(raw)
        reads = ex.reads
        index = ExchangeIndex(
            compressed_bytes=len(data),
            raw_bytes=len(raw),
            crc32=zlib.crc32(data),
            method=ex.request.method,
            url=ex.request.url,
            status=ex.status,
            reads=len(reads),
            body_bytes=sum(len(r.data) for r in reads),
            started_at_ns=ex.started_at_ns,
            headers_ns=ex.headers_ns,
            first_byte_ns=reads[0].t_ns if reads else 0,
            duration_ns=ex.end_ns,
            outcome=ex.outcome,
        )
        return frame(index, data)


def decompress(path: str, at: int, ulen: int, data: bytes) -> bytes:
    """The record's msgpack, never more memory than the file can plausibly hold.

    A declared size past `MAX_RECORD_BYTES` is refused outright; one the compressed
    bytes could not plausibly hold is decompressed as a stream, so a damaged or crafted
    length costs what the frame really holds, not what it claims.
    """
    if ulen > MAX_RECORD_BYTES:
        raise CassetteCorruptError(
            path, at, f"data frame declares {ulen} bytes, past the {MAX_RECORD_BYTES}-byte limit"
        )
    try:
        if ulen <= _PLAUSIBLE_RATIO * len(data) + (1 << 20):
            raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=ulen)
        else:
            raw = _decompress_stream(data, ulen)
    except zstandard.ZstdError as e:
        raise CassetteCorruptError(path, at, f"data frame does not decompress: {e}") from None
    if len(raw) != ulen:
        raise CassetteCorruptError(path, at, f"data frame holds {len(raw)} bytes, not {ulen}")
    return raw


def _decompress_stream(data: bytes, ulen: int) -> bytes:
    """Decompress a MiB at a time, stopping one MiB past the declared size."""
    parts: list[bytes] = []
    total = 0
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        while total <= ulen:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    return b"".join(parts)


def decode_request(path: str, at: int, index: ExchangeIndex, data: bytes) -> RecordedRequest:
    """Only the request of an exchange record (its checksum and size checked as for all)."""
    return _decoded(path, at, index, data, lambda raw: request_of(REQUEST_DECODER.decode(raw)))


def decode_exchange(path: str, at: int, index: ExchangeIndex, data: bytes) -> Exchange:
    return _decoded(path, at, index, data, lambda raw: from_disk(EXCHANGE_DECODER.decode(raw)))


def _decoded(
    path: str, at: int, index: ExchangeIndex, data: bytes, build: Callable[[bytes], _T]
) -> _T:
    """``build`` applied to the record's msgpack; any way it fails is a corrupt record."""
    raw = decompress(path, at, index.raw_bytes, data)
    try:
        return build(raw)
    except DECODE_ERRORS as e:
        raise CassetteCorruptError(path, at, f"exchange record does not decode: {e}") from None
