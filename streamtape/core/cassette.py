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
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, Literal, TypeVar

import msgspec

from streamtape.core._codec import (
    DEFAULT_LEVEL,
    FORMAT_VERSION,
    INDEX_FIELDS,
    MAGIC,
    RECORD_MAGIC,
    CassetteHeader,
    Codec,
    Entry,
    ExchangeIndex,
    decode_exchange,
    decode_request,
)
from streamtape.core._scan import Damage, Scan, TailReport
from streamtape.core.cassette_paths import access_error
from streamtape.core.exchange import Exchange, RecordedRequest
from streamtape.errors import (
    CassetteCorruptError,
    CassetteError,
)

_R = TypeVar("_R")
_Decode = Callable[[str, int, ExchangeIndex, bytes], _R]

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
    "Damage",
    "Entry",
    "RepairReport",
    "TailReport",
    "repair",
    "write_cassette",
]


OnCorrupt = Literal["raise", "skip"]


class RepairReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `repair` kept and what it dropped."""

    kept: int
    """Exchanges in the repaired file."""
    damaged: list[Damage]
    tail: TailReport | None
    rewritten: bool
    """False when the file was intact and left as it was."""


def repair(path: str | os.PathLike[str]) -> RepairReport:
    """Rewrite a cassette with every intact exchange, atomically; report what was dropped.

    The new file is written beside the old and renamed over it only once complete, so
    a crash mid-way leaves the original. An intact file is not touched.
    """
    source = Cassette.open(path, on_corrupt="skip")
    exchanges = source.exchanges()
    if not source.damaged and source.tail is None:
        return RepairReport(kept=len(exchanges), damaged=[], tail=None, rewritten=False)
    write_cassette(path, exchanges)
    return RepairReport(
        kept=len(exchanges), damaged=source.damaged, tail=source.tail, rewritten=True
    )


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
        on_corrupt: OnCorrupt = "raise",
    ) -> None:
        if on_corrupt not in ("raise", "skip"):
            raise ValueError(f'on_corrupt must be "raise" or "skip", not {on_corrupt!r}')
        self.path = pathlib.Path(path)
        self.strict = strict
        """Raise CassetteCorruptError on a cut tail instead of reporting it in ``tail``."""
        self.on_corrupt: OnCorrupt = on_corrupt
        """``"skip"``: readers step over damaged records (listed in ``damaged``) and go on."""
        self.damaged: list[Damage] = []
        """The damaged records the last read skipped (``on_corrupt="skip"`` only)."""
        self.durable = durable
        """fdatasync after every append: survives power loss, costs a disk flush each."""
        self.tail: TailReport | None = None
        """Set by the last read that met a cut tail; None after a read that did not."""
        self.repaired: TailReport | None = None
        """The partial record that the first append truncated, if there was one."""
        self.header: CassetteHeader | None = None
        """The file's header, once any read or append has seen it."""
        self._codec = Codec(level)
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
        on_corrupt: OnCorrupt = "raise",
    ) -> Cassette:
        """A cassette at ``path``, which need not exist yet (the first append creates it).

        An existing file is checked now, so a wrong path or a newer format fails
        here with NotACassetteError or CassetteVersionError rather than mid-test.
        ``on_corrupt="skip"`` reads past damaged records instead of stopping at the first.
        """
        cassette = cls(path, strict=strict, durable=durable, level=level, on_corrupt=on_corrupt)
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

    def _scan(self, f: BinaryIO, start: int = 0) -> Scan:
        return Scan(f, str(self.path), start, skip_damaged=self.on_corrupt == "skip")

    def _finish(self, scan: Scan) -> None:
        self.header = scan.header or self.header
        self.tail = scan.tail
        self.damaged = scan.damaged
        if scan.tail is not None and self.strict:
            raise CassetteCorruptError(str(self.path), scan.tail.offset, str(scan.tail))

    def _check_header(self) -> None:
        f = self._open_read()
        if f is None:
            return
        with f:
            scan = Scan(f, str(self.path))
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
            scan = self._scan(f)
            path = str(self.path)
            for offset, index, data in scan.records(with_data=True):
                if isinstance(index, ExchangeIndex):
                    assert data is not None
                    try:
                        exchange = decode_exchange(path, offset, index, data)
                    except CassetteCorruptError as exc:
                        if not scan.skip_damaged:
                            raise
                        size = f.tell() - offset  # the whole record: its frames are intact
                        scan.damaged.append(
                            Damage(offset=offset, skipped_bytes=size, reason=exc.reason)
                        )
                        continue
                    yield exchange
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
            scan = self._scan(f)
            for offset, index, _ in scan.records(with_data=False):
                if isinstance(index, ExchangeIndex):
                    listed = {name: getattr(index, name) for name in INDEX_FIELDS}
                    yield Entry(offset=offset, record_bytes=f.tell() - offset, **listed)
            self._finish(scan)

    def get(self, where: Entry | int) -> Exchange:
        """The exchange whose record starts at an entry's offset (random access for ``show``)."""
        offset = where.offset if isinstance(where, Entry) else where
        with self._reader() as f:
            return self._record_at(f, offset, decode_exchange)

    def requests_at(self, offsets: Iterable[int]) -> list[RecordedRequest]:
        """The requests of the records at ``offsets``, read with one open and no bodies built.

        Why: a replay server matches on requests only, and loads them for thousands of
        records when a kind of request is first asked for.
        """
        with self._reader() as f:
            return [self._record_at(f, offset, decode_request) for offset in offsets]

    def _reader(self) -> BinaryIO:
        f = self._open_read()
        if f is None:
            raise CassetteError(f"{self.path}: no such cassette")
        return f

    def _record_at(self, f: BinaryIO, offset: int, decode: _Decode[_R]) -> _R:
        path = str(self.path)
        for at, index, data in Scan(f, path, start=offset).records(with_data=True):
            if isinstance(index, ExchangeIndex) and data is not None:
                return decode(path, at, index, data)
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
                scan = Scan(f, str(self.path))
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
    codec = Codec(level)
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
