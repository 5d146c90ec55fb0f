"""The cassette file: an append-only, crash-safe log of exchanges in zstd frames.

Why this layout: every record must survive a writer killed at any byte, many
writers appending at once, and a reader that only wants a listing. So each record
is self-delimiting and checksummed, and its summary sits outside the compressed
data, where a listing can read it without decompressing anything.

On-disk layout (format version 1). A ``.tape`` file is a sequence of records, and
every record is two consecutive zstd frames::

    record := index frame, data frame

    index frame (a zstd *skippable* frame, which ordinary zstd decoders skip):
      u32le  0x184D2A5B                       skippable-frame magic
      u32le  N                                payload length
      u32le  crc32(entry)                     checksum of the next N - 4 bytes
      entry  msgpack array, N - 4 bytes       [kind, clen, ulen, crc, ...]

    data frame (an ordinary zstd frame, content size and checksum included):
      clen bytes that decompress to ulen bytes of msgpack;
      crc = crc32 of those clen compressed bytes

Index entries (msgpack arrays; readers ignore trailing elements they do not know):

- kind 0, header: ``[0, clen, ulen, crc, "streamtape", format_version]``; its data
  is the map ``{magic, format_version, writer_version, created_at_ns}``. The first
  record of a file is always a header. Later headers are allowed (so ``cat a.tape
  b.tape`` is a valid cassette) and are checked the same way.
- kind 1, exchange: ``[1, clen, ulen, crc, method, url, status, reads, body_bytes,
  started_at_ns, headers_ns, first_byte_ns, duration_ns, outcome]``; its data is
  the array ``[method, url, request_headers, request_body, status,
  response_headers, read_gaps, read_sizes, body, started_at_ns, headers_ns,
  end_ns, outcome, error, http_version, redacted]``, where ``body`` is every read
  concatenated, ``read_sizes`` splits it back into reads and ``read_gaps`` holds
  each read's ``t_ns`` minus the previous one's (the first minus 0). One body and
  delta-encoded times compress about 12 % better than a list of ``(t_ns, bytes)``.
- any other kind: skipped, so version 1 readers tolerate records added later
  (a dictionary, a seek table) as long as they keep the ``[kind, clen, ulen, crc]``
  prefix. Changes that old readers must not skip bump ``format_version``.

The whole file is a valid concatenation of zstd frames: ``zstd -dc cassette.tape``
prints the msgpack records without their index entries.

Writing: each record is built in memory and written with one ``os.write`` on an
``O_APPEND`` descriptor, under a thread lock and an exclusive ``flock`` (where
the platform has one), so threads and processes never interleave. ``durable=True``
adds an ``fdatasync`` after each record.

Reading: records are read one by one from a buffered file (never the whole file).
A file that ends inside a record (a crash, a full disk, a copy cut short) yields
every complete exchange and sets ``Cassette.tail`` to a :class:`TailReport`;
``strict=True`` raises :class:`CassetteCorruptError` instead. A tail of zero bytes
(what a power loss can leave) counts as cut too. A record whose length reaches past
the end of the file while a valid record starts later is damage, not a cut tail,
and raises. Appending to a file with a cut tail first truncates the partial record
and reports it in ``Cassette.repaired``. A reader sees the file as it was when the
read began; a record being written at that moment may show up as a cut tail.

Empty and missing files: a path that does not exist, or a 0-byte file (``touch``,
or a writer killed before its first record), reads as an empty cassette without
a tail report, and the first append writes the header.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, Final

import msgspec
import zstandard

from streamtape._version import __version__
from streamtape.core.cassette_paths import access_error
from streamtape.core.exchange import Exchange, Headers, Outcome, Read, RecordedRequest
from streamtape.errors import (
    CassetteCorruptError,
    CassetteError,
    CassetteVersionError,
    NotACassetteError,
)

try:  # POSIX only: advisory locks keep concurrent processes from interleaving a repair.
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LEVEL",
    "FORMAT_VERSION",
    "MAGIC",
    "RECORD_MAGIC",
    "Cassette",
    "CassetteHeader",
    "Entry",
    "TailReport",
    "write_cassette",
]

FORMAT_VERSION: Final = 1
"""The newest cassette format this module reads and the one it writes."""
WRITER_VERSION: Final = __version__
"""streamtape's version, recorded in headers (kept here to avoid importing the package)."""
MAGIC: Final = "streamtape"
RECORD_MAGIC: Final = 0x184D2A5B
"""The zstd skippable-frame magic that opens every record."""
DEFAULT_LEVEL: Final = 3
"""zstd level: 3 is within 4 % of level 9's size at a seventh of its time per record."""

_KIND_HEADER: Final = 0
_KIND_EXCHANGE: Final = 1
_MAGIC_BYTES: Final = struct.pack("<I", RECORD_MAGIC)
_FRAME_HEAD = struct.Struct("<II")
_CRC = struct.Struct("<I")
_MAX_INDEX_BYTES: Final = 1 << 20
"""Larger index payloads cannot come from a writer: the length field is damaged."""
_POOL_SIZE: Final = 8


class TailReport(msgspec.Struct, frozen=True, kw_only=True):
    """A file that ends inside a record: where the partial record starts and why it is cut."""

    offset: int
    """Byte offset of the partial record; everything before it was read."""
    cut_bytes: int
    """How many bytes of the partial record are present (what a repair truncates)."""
    reason: str

    def __str__(self) -> str:
        return f"cut tail at byte {self.offset} ({self.cut_bytes} bytes): {self.reason}"


class CassetteHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first record of every cassette: what wrote it and in which format."""

    magic: str
    format_version: int
    writer_version: str
    created_at_ns: int


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One exchange as the index describes it, read without decompressing the exchange."""

    offset: int
    """Byte offset of the record; ``Cassette.get(entry)`` reads the exchange there."""
    record_bytes: int
    """Size of the record on disk (index and data frames)."""
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


class _HeaderIndex(msgspec.Struct, array_like=True, tag=_KIND_HEADER):
    clen: int
    ulen: int
    crc: int
    magic: str
    format_version: int


class _ExchangeIndex(msgspec.Struct, array_like=True, tag=_KIND_EXCHANGE):
    clen: int
    ulen: int
    crc: int
    method: str
    url: str
    status: int
    reads: int
    body_bytes: int
    started_at_ns: int
    headers_ns: int
    first_byte_ns: int
    duration_ns: int
    outcome: Outcome


class _DiskExchange(msgspec.Struct, array_like=True):
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


_Index = _HeaderIndex | _ExchangeIndex

_encoder = msgspec.msgpack.Encoder()
_index_decoder = msgspec.msgpack.Decoder(_Index)
_exchange_decoder = msgspec.msgpack.Decoder(_DiskExchange)
_header_decoder = msgspec.msgpack.Decoder(CassetteHeader)

_DecodeErrors = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError)


def _frame(kind_index: _Index, data: bytes) -> bytes:
    """One record: the index frame followed by the already-compressed data frame."""
    entry = _encoder.encode(kind_index)
    head = _FRAME_HEAD.pack(RECORD_MAGIC, len(entry) + 4) + _CRC.pack(zlib.crc32(entry))
    return b"".join((head, entry, data))


def _to_disk(ex: Exchange) -> _DiskExchange:
    gaps: list[int] = []
    sizes: list[int] = []
    prev = 0
    for r in ex.reads:
        gaps.append(r.t_ns - prev)
        sizes.append(len(r.data))
        prev = r.t_ns
    req = ex.request
    return _DiskExchange(
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


def _from_disk(d: _DiskExchange) -> Exchange:
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
        request=RecordedRequest(
            method=d.method, url=d.url, headers=d.request_headers, body=d.request_body
        ),
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


class _Codec:
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
            if len(self._pool) < _POOL_SIZE:
                self._pool.append(cctx)

    def header_record(self) -> bytes:
        header = CassetteHeader(
            magic=MAGIC,
            format_version=FORMAT_VERSION,
            writer_version=WRITER_VERSION,
            created_at_ns=time.time_ns(),
        )
        raw = _encoder.encode(header)
        data = self.compress(raw)
        return _frame(
            _HeaderIndex(len(data), len(raw), zlib.crc32(data), MAGIC, FORMAT_VERSION), data
        )

    def exchange_record(self, ex: Exchange) -> bytes:
        raw = _encoder.encode(_to_disk(ex))
        data = self.compress(raw)
        reads = ex.reads
        index = _ExchangeIndex(
            clen=len(data),
            ulen=len(raw),
            crc=zlib.crc32(data),
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
        return _frame(index, data)


class _Scan:
    """Walks the records of one open file, classifying every way it can end or break."""

    def __init__(self, f: BinaryIO, path: str, start: int = 0) -> None:
        self.f = f
        self.path = path
        self.start = start
        self.size = os.fstat(f.fileno()).st_size
        self.tail: TailReport | None = None
        self.header: CassetteHeader | None = None

    def corrupt(self, offset: int, reason: str) -> CassetteCorruptError:
        return CassetteCorruptError(self.path, offset, reason)

    def records(self, with_data: bool) -> Iterator[tuple[int, _Index, bytes | None]]:
        """Yield (offset, index entry, compressed data or None) for every complete record."""
        f, size = self.f, self.size
        pos = self.start
        f.seek(pos)
        while pos < size:
            first = pos == 0
            head = f.read(8)
            if len(head) < 8:
                self.cut_or_raise(pos, head, "the file ends inside a record's frame header")
                return
            magic, n = _FRAME_HEAD.unpack(head)
            if magic != RECORD_MAGIC:
                self.cut_or_raise(pos, head, f"expected a record frame, found magic {magic:#010x}")
                return
            if n < 4 or n > _MAX_INDEX_BYTES:
                if first:
                    raise NotACassetteError(self.path, f"first frame declares {n} bytes")
                raise self.corrupt(pos, f"index frame declares an impossible {n} bytes")
            if pos + 8 + n > size:
                self.cut(pos, f"index frame needs {n} bytes, {size - pos - 8} present")
                return
            payload = f.read(n)
            index = self.decode_index(pos, payload, first)
            data_at = pos + 8 + n
            end = data_at + index.clen if index is not None else data_at
            if index is not None and end > size:
                self.cut(pos, f"data frame needs {index.clen} bytes, {size - data_at} present")
                return
            if index is None:  # an unknown kind: decode_index already moved past it
                pos = f.tell()
                continue
            data: bytes | None = None
            if with_data or isinstance(index, _HeaderIndex):
                data = f.read(index.clen)
                if zlib.crc32(data) != index.crc:
                    raise self.corrupt(data_at, "data frame checksum mismatch")
                if isinstance(index, _HeaderIndex):
                    self.header = self.decode_header(data_at, index, data)
            else:
                f.seek(index.clen, os.SEEK_CUR)
            yield pos, index, data
            pos = end

    def decode_index(self, pos: int, payload: bytes, first: bool) -> _Index | None:
        """Check and decode one index entry; None (after seeking past it) for an unknown kind."""
        (crc,) = _CRC.unpack_from(payload)
        entry = memoryview(payload)[4:]
        if zlib.crc32(entry) != crc:
            raise self.corrupt(pos, "index checksum mismatch")
        if first:
            self.check_first(entry)
        try:
            index: _Index = _index_decoder.decode(entry)
        except _DecodeErrors:
            generic = self.decode_generic(pos, entry)
            if generic[0] in (_KIND_HEADER, _KIND_EXCHANGE):
                raise self.corrupt(pos, "index entry does not match its kind") from None
            clen = generic[1]
            if pos + 8 + len(payload) + clen > self.size:
                self.cut(pos, f"data frame needs {clen} bytes")
                self.f.seek(self.size)
                return None
            self.f.seek(clen, os.SEEK_CUR)
            return None
        if index.clen < 0 or index.ulen < 0:
            raise self.corrupt(pos, "negative length in index entry")
        if isinstance(index, _HeaderIndex):
            self.check_version(index.magic, index.format_version)
        return index

    def decode_generic(self, pos: int, entry: memoryview) -> list[int]:
        try:
            value = msgspec.msgpack.decode(entry)
        except msgspec.DecodeError:
            raise self.corrupt(pos, "index entry is not valid msgpack") from None
        if (
            not isinstance(value, list)
            or len(value) < 4
            or not all(type(v) is int and v >= 0 for v in value[:4])
        ):
            raise self.corrupt(pos, "index entry lacks [kind, clen, ulen, crc]")
        return value[:4]

    def check_first(self, entry: memoryview) -> None:
        """Check the first entry untyped, so a future layout still gets a clear version error."""
        try:
            value = msgspec.msgpack.decode(entry)
        except msgspec.DecodeError:
            raise NotACassetteError(self.path, "first record is not msgpack") from None
        if not (isinstance(value, list) and len(value) >= 6 and value[0] == _KIND_HEADER):
            raise NotACassetteError(self.path, "first record is not a streamtape header")
        self.check_version(value[4], value[5])

    def check_version(self, magic: object, version: object) -> None:
        if magic != MAGIC:
            raise NotACassetteError(self.path, f"header magic is {magic!r}, not {MAGIC!r}")
        if type(version) is not int or version < 1:
            raise NotACassetteError(self.path, f"header format version is {version!r}")
        if version > FORMAT_VERSION:
            raise CassetteVersionError(self.path, version, FORMAT_VERSION)

    def decode_header(self, at: int, index: _HeaderIndex, data: bytes) -> CassetteHeader:
        raw = _decompress(self.path, at, index.ulen, data)
        try:
            return _header_decoder.decode(raw)
        except _DecodeErrors as e:
            raise self.corrupt(at, f"header record does not decode: {e}") from None

    def cut_or_raise(self, pos: int, head: bytes, reason: str) -> None:
        """Bytes at a record boundary that are not a record: a cut tail, zeros, or garbage."""
        prefix = head[:4]
        if _MAGIC_BYTES.startswith(prefix) and len(head) < 8:
            self.cut(pos, "the file ends inside a record's frame header")
            return
        self.f.seek(pos)
        if not self.f.read().strip(b"\0"):
            self.cut(pos, "the rest of the file is zero bytes (written space that never got data)")
            return
        if pos == 0:
            raise NotACassetteError(self.path, "it does not start with a streamtape record frame")
        raise self.corrupt(pos, reason)

    def cut(self, pos: int, reason: str) -> None:
        """Report a cut tail, unless a valid record follows: then a length field is damaged."""
        self.f.seek(pos + 1)
        rest = self.f.read()
        base = pos + 1
        i = rest.find(_MAGIC_BYTES)
        while i >= 0:
            if len(rest) - i >= 12:
                _, n = _FRAME_HEAD.unpack_from(rest, i)
                payload = rest[i + 8 : i + 8 + n]
                if 4 <= n <= _MAX_INDEX_BYTES and len(payload) == n:
                    (crc,) = _CRC.unpack_from(payload)
                    if zlib.crc32(payload[4:]) == crc:
                        raise self.corrupt(
                            pos,
                            f"record length reaches past the end of the file, but a valid "
                            f"record starts at byte {base + i}: a length field is damaged",
                        )
            i = rest.find(_MAGIC_BYTES, i + 1)
        self.tail = TailReport(offset=pos, cut_bytes=self.size - pos, reason=reason)


def _decompress(path: str, at: int, ulen: int, data: bytes) -> bytes:
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=ulen)
    except zstandard.ZstdError as e:
        raise CassetteCorruptError(path, at, f"data frame does not decompress: {e}") from None
    if len(raw) != ulen:
        raise CassetteCorruptError(path, at, f"data frame holds {len(raw)} bytes, not {ulen}")
    return raw


def _decode_exchange(path: str, at: int, index: _ExchangeIndex, data: bytes) -> Exchange:
    raw = _decompress(path, at, index.ulen, data)
    try:
        return _from_disk(_exchange_decoder.decode(raw))
    except _DecodeErrors as e:
        raise CassetteCorruptError(path, at, f"exchange record does not decode: {e}") from None


class Cassette:
    """One ``.tape`` file: iterate its exchanges, list its index, append to it.

    Reading methods open the file afresh each time, so a cassette being recorded
    can be read while it grows. ``append`` is safe from any number of threads (and
    processes, each with its own ``Cassette``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        strict: bool = False,
        durable: bool = False,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        self.path = pathlib.Path(path)
        self.strict = strict
        """Raise CassetteCorruptError on a cut tail instead of reporting it in ``tail``."""
        self.durable = durable
        """fdatasync after every append: survives power loss, costs a disk flush each."""
        self.tail: TailReport | None = None
        """Set by the last read that met a cut tail; None after a read that did not."""
        self.repaired: TailReport | None = None
        """The partial record that the first append truncated, if there was one."""
        self.header: CassetteHeader | None = None
        """The file's header, once any read or append has seen it."""
        self._codec = _Codec(level)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        strict: bool = False,
        durable: bool = False,
        level: int = DEFAULT_LEVEL,
    ) -> Cassette:
        """A cassette at ``path``, which need not exist yet (the first append creates it).

        An existing file is checked now, so a wrong path or a newer format fails
        here with NotACassetteError or CassetteVersionError rather than mid-test.
        """
        cassette = cls(path, strict=strict, durable=durable, level=level)
        cassette._check_header()
        return cassette

    # -- reading ---------------------------------------------------------------------------

    def _open_read(self) -> BinaryIO | None:
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            return None
        except OSError as e:  # a folder, no permission: our error, naming the path
            raise access_error(self.path, "read the cassette", e) from None

    def _finish(self, scan: _Scan) -> None:
        self.header = scan.header or self.header
        self.tail = scan.tail
        if scan.tail is not None and self.strict:
            raise CassetteCorruptError(str(self.path), scan.tail.offset, str(scan.tail))

    def _check_header(self) -> None:
        f = self._open_read()
        if f is None:
            return
        with f:
            scan = _Scan(f, str(self.path))
            for _ in scan.records(with_data=False):
                break
            self.header = scan.header

    def __iter__(self) -> Iterator[Exchange]:
        """Every complete exchange in file order, read lazily from the start of the file."""
        f = self._open_read()
        if f is None:
            self.tail = None
            return
        with f:
            scan = _Scan(f, str(self.path))
            path = str(self.path)
            for offset, index, data in scan.records(with_data=True):
                if isinstance(index, _ExchangeIndex):
                    assert data is not None
                    yield _decode_exchange(path, offset, index, data)
            self._finish(scan)

    def exchanges(self) -> list[Exchange]:
        """All complete exchanges, in file order."""
        return list(self)

    def entries(self) -> Iterator[Entry]:
        """The index of every complete exchange, without decompressing any (fast listing).

        Data checksums are not verified here; reading the exchange verifies them.
        """
        f = self._open_read()
        if f is None:
            self.tail = None
            return
        with f:
            scan = _Scan(f, str(self.path))
            for offset, index, _ in scan.records(with_data=False):
                if isinstance(index, _ExchangeIndex):
                    yield Entry(
                        offset=offset,
                        record_bytes=f.tell() - offset,
                        method=index.method,
                        url=index.url,
                        status=index.status,
                        reads=index.reads,
                        body_bytes=index.body_bytes,
                        started_at_ns=index.started_at_ns,
                        headers_ns=index.headers_ns,
                        first_byte_ns=index.first_byte_ns,
                        duration_ns=index.duration_ns,
                        outcome=index.outcome,
                    )
            self._finish(scan)

    def get(self, where: Entry | int) -> Exchange:
        """The exchange whose record starts at an entry's offset (random access for ``show``)."""
        offset = where.offset if isinstance(where, Entry) else where
        f = self._open_read()
        if f is None:
            raise CassetteError(f"{self.path}: no such cassette")
        with f:
            scan = _Scan(f, str(self.path), start=offset)
            for at, index, data in scan.records(with_data=True):
                if isinstance(index, _ExchangeIndex) and data is not None:
                    return _decode_exchange(str(self.path), at, index, data)
                break
        raise CassetteError(f"{self.path}: no complete exchange record at byte {offset}")

    # -- writing ---------------------------------------------------------------------------

    def append(self, exchange: Exchange) -> None:
        """Add one exchange at the end of the file, creating the file and header if needed.

        The record is encoded and compressed outside the lock; only the single write
        is serialised, so concurrent recorders mostly run in parallel.
        """
        record = self._codec.exchange_record(exchange)
        with self._lock:
            fd = self._writer_fd()
            self._write(fd, record)

    def _writer_fd(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        # First append in this process (or in a forked child, which must not share state).
        self._fd = None
        self._pid = os.getpid()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            raise access_error(self.path, "open the cassette for appending", e) from e
        try:
            _lock(fd)
            try:
                self._prepare(fd)
            finally:
                _unlock(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def _prepare(self, fd: int) -> None:
        """Write the header into an empty file, or cut a partial tail off an existing one."""
        size = os.fstat(fd).st_size
        if size > 0:
            with open(self.path, "rb") as f:
                scan = _Scan(f, str(self.path))
                for _ in scan.records(with_data=False):
                    pass
            self.header = scan.header
            if scan.tail is not None:
                os.ftruncate(fd, scan.tail.offset)
                self.repaired = scan.tail
                size = scan.tail.offset
        if size == 0:
            self._write_unlocked(fd, self._codec.header_record())
            if self.durable:
                _sync_dir(self.path.parent)

    def _write(self, fd: int, record: bytes) -> None:
        _lock(fd)
        try:
            self._write_unlocked(fd, record)
        finally:
            _unlock(fd)

    def _write_unlocked(self, fd: int, record: bytes) -> None:
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, record)
        except OSError as e:
            raise CassetteError(f"{self.path}: cannot append: {e}") from e
        if written != len(record):
            # Only a full disk or a file size limit does this; leave no partial record.
            os.ftruncate(fd, start)
            raise CassetteError(
                f"{self.path}: short write ({written} of {len(record)} bytes); "
                "the record was not appended (is the disk full?)"
            )
        if self.durable:
            _fdatasync(fd)

    def close(self) -> None:
        """Close the append descriptor; a later append reopens it."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Cassette:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r})"


def _lock(fd: int) -> None:
    if _fcntl is not None:
        _fcntl.flock(fd, _fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    if _fcntl is not None:
        _fcntl.flock(fd, _fcntl.LOCK_UN)


def _fdatasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _sync_dir(directory: pathlib.Path) -> None:
    """Make a new file's directory entry durable (POSIX; a no-op where dirs cannot be opened)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_cassette(
    path: str | os.PathLike[str],
    exchanges: Iterable[Exchange],
    *,
    level: int = DEFAULT_LEVEL,
) -> None:
    """Write a whole cassette, replacing any file at ``path`` atomically.

    The records go to a temporary file in the same directory that is renamed over
    ``path`` only once complete, so readers see the old cassette or the new one.
    """
    target = pathlib.Path(path)
    codec = _Codec(level)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(codec.header_record())
            for ex in exchanges:
                f.write(codec.exchange_record(ex))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
