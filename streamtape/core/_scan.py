"""Reading records back: walk the frames of a cassette, check them, report a cut tail.

The scanner is strict about what a writer could have produced (framing, checksums,
declared sizes) and tells a file cut inside a record (a crash mid-append: report it,
keep everything before it) from bytes that were damaged (raise, naming the offset).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from streamtape.core._codec import (
    CRC,
    DECODE_ERRORS,
    FORMAT_VERSION,
    FRAME_HEAD,
    HEADER_DECODER,
    INDEX_DECODER,
    KIND_EXCHANGE,
    KIND_HEADER,
    MAGIC,
    MAGIC_BYTES,
    MAX_INDEX_BYTES,
    RECORD_MAGIC,
    CassetteHeader,
    HeaderIndex,
    Index,
    decompress,
)
from streamtape.errors import CassetteCorruptError, CassetteVersionError, NotACassetteError


class TailReport(msgspec.Struct, frozen=True, kw_only=True):
    """A file that ends inside a record: where the partial record starts and why it is cut."""

    offset: int
    """Byte offset of the partial record; everything before it was read."""
    cut_bytes: int
    """How many bytes of the partial record are present (what a repair truncates)."""
    reason: str

    def __str__(self) -> str:
        return f"cut tail at byte {self.offset} ({self.cut_bytes} bytes): {self.reason}"


class Damage(msgspec.Struct, frozen=True, kw_only=True):
    """A record that breaks the format, skipped by a reader told to go on past damage."""

    offset: int
    """Byte offset where the damaged record starts."""
    skipped_bytes: int
    """Bytes skipped, up to the next valid record (or the end of the file)."""
    reason: str

    def __str__(self) -> str:
        skipped = f"{self.skipped_bytes} bytes skipped"
        return f"damaged record at byte {self.offset} ({skipped}): {self.reason}"


class Scan:
    """Walks the records of one open file, classifying every way it can end or break."""

    def __init__(
        self, f: BinaryIO, path: str, start: int = 0, *, skip_damaged: bool = False
    ) -> None:
        self.f = f
        self.path = path
        self.start = start
        self.skip_damaged = skip_damaged
        self.damaged: list[Damage] = []
        self.size = os.fstat(f.fileno()).st_size
        self.tail: TailReport | None = None
        self.header: CassetteHeader | None = None

    def corrupt(self, offset: int, reason: str) -> CassetteCorruptError:
        return CassetteCorruptError(self.path, offset, reason)

    def records(self, with_data: bool) -> Iterator[tuple[int, Index, bytes | None]]:
        """Yield (offset, index entry, compressed data or None) for every complete record.

        With ``skip_damaged``, a record that breaks the format is noted in ``damaged``
        and the walk goes on at the next valid record frame.
        """
        pos = self.start
        self.f.seek(pos)
        while pos < self.size:
            try:
                step = self.record(pos, with_data)
            except CassetteCorruptError as exc:
                if not self.skip_damaged:
                    raise
                pos = self.skip(pos, exc.reason)
                continue
            if step is None:
                return
            pos, item = step
            if item is not None:
                yield item

    def skip(self, pos: int, reason: str) -> int:
        """Note the damaged record at ``pos``; where the next valid record starts (or EOF)."""
        nxt = self.next_record(pos + 1)
        end = self.size if nxt is None else nxt
        self.damaged.append(Damage(offset=pos, skipped_bytes=end - pos, reason=reason))
        self.f.seek(end)
        return end

    def record(
        self, pos: int, with_data: bool
    ) -> tuple[int, tuple[int, Index, bytes | None] | None] | None:
        """Read the record at ``pos``: (where the next starts, what to yield); None: the end."""
        f, size = self.f, self.size
        first = pos == 0
        head = f.read(8)
        if len(head) < 8:
            self.cut_or_raise(pos, head, "the file ends inside a record's frame header")
            return None
        magic, n = FRAME_HEAD.unpack(head)
        if magic != RECORD_MAGIC:
            self.cut_or_raise(pos, head, f"expected a record frame, found magic {magic:#010x}")
            return None
        if n < 4 or n > MAX_INDEX_BYTES:
            if first:
                raise NotACassetteError(self.path, f"first frame declares {n} bytes")
            raise self.corrupt(pos, f"index frame declares an impossible {n} bytes")
        if pos + 8 + n > size:
            self.cut(pos, f"index frame needs {n} bytes, {size - pos - 8} present")
            return None
        payload = f.read(n)
        index = self.decode_index(pos, payload, first)
        if index is None:  # an unknown kind: decode_index already moved past it
            return f.tell(), None
        data_at = pos + 8 + n
        end = data_at + index.compressed_bytes
        if end > size:
            present = size - data_at
            self.cut(pos, f"data frame needs {index.compressed_bytes} bytes, {present} present")
            return None
        data: bytes | None = None
        if with_data or isinstance(index, HeaderIndex):
            data = f.read(index.compressed_bytes)
            if zlib.crc32(data) != index.crc32:
                raise self.corrupt(data_at, "data frame checksum mismatch")
            if isinstance(index, HeaderIndex):
                self.header = self.decode_header(data_at, index, data)
        else:
            f.seek(index.compressed_bytes, os.SEEK_CUR)
        return end, (pos, index, data)

    def decode_index(self, pos: int, payload: bytes, first: bool) -> Index | None:
        """Check and decode one index entry; None (after seeking past it) for an unknown kind."""
        (crc,) = CRC.unpack_from(payload)
        entry = memoryview(payload)[4:]
        if zlib.crc32(entry) != crc:
            raise self.corrupt(pos, "index checksum mismatch")
        if first:
            self.check_first(entry)
        try:
            index: Index = INDEX_DECODER.decode(entry)
        except DECODE_ERRORS:
            generic = self.decode_generic(pos, entry)
            if generic[0] in (KIND_HEADER, KIND_EXCHANGE):
                raise self.corrupt(pos, "index entry does not match its kind") from None
            clen = generic[1]
            if pos + 8 + len(payload) + clen > self.size:
                self.cut(pos, f"data frame needs {clen} bytes")
                self.f.seek(self.size)
                return None
            self.f.seek(clen, os.SEEK_CUR)
            return None
        if index.compressed_bytes < 0 or index.raw_bytes < 0:
            raise self.corrupt(pos, "negative length in index entry")
        if isinstance(index, HeaderIndex):
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
        if not (isinstance(value, list) and len(value) >= 6 and value[0] == KIND_HEADER):
            raise NotACassetteError(self.path, "first record is not a streamtape header")
        self.check_version(value[4], value[5])

    def check_version(self, magic: object, version: object) -> None:
        if magic != MAGIC:
            raise NotACassetteError(self.path, f"header magic is {magic!r}, not {MAGIC!r}")
        if type(version) is not int or version < 1:
            raise NotACassetteError(self.path, f"header format version is {version!r}")
        if version > FORMAT_VERSION:
            raise CassetteVersionError(self.path, version, FORMAT_VERSION)

    def decode_header(self, at: int, index: HeaderIndex, data: bytes) -> CassetteHeader:
        raw = decompress(self.path, at, index.raw_bytes, data)
        try:
            return HEADER_DECODER.decode(raw)
        except DECODE_ERRORS as e:
            raise self.corrupt(at, f"header record does not decode: {e}") from None

    def cut_or_raise(self, pos: int, head: bytes, reason: str) -> None:
        """Bytes at a record boundary that are not a record: a cut tail, zeros, or garbage."""
        prefix = head[:4]
        if MAGIC_BYTES.startswith(prefix) and len(head) < 8:
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
        nxt = self.next_record(pos + 1)
        if nxt is not None:
            raise self.corrupt(
                pos,
                f"record length reaches past the end of the file, but a valid "
                f"record starts at byte {nxt}: a length field is damaged",
            )
        self.tail = TailReport(offset=pos, cut_bytes=self.size - pos, reason=reason)

    def next_record(self, start: int) -> int | None:
        """The offset of the first record frame at or after ``start`` whose index checks out."""
        self.f.seek(start)
        rest = self.f.read()
        i = rest.find(MAGIC_BYTES)
        while i >= 0:
            if len(rest) - i >= 12:
                _, n = FRAME_HEAD.unpack_from(rest, i)
                payload = rest[i + 8 : i + 8 + n]
                if 4 <= n <= MAX_INDEX_BYTES and len(payload) == n:
                    (crc,) = CRC.unpack_from(payload)
                    if zlib.crc32(payload[4:]) == crc:
                        return start + i
            i = rest.find(MAGIC_BYTES, i + 1)
        return None
