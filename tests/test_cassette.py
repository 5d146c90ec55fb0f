"""The cassette format: exact round trips, cut tails, damage, crashes and concurrency."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import msgspec
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtape.core.cassette import (
    FORMAT_VERSION,
    RECORD_MAGIC,
    Cassette,
    Entry,
    write_cassette,
)
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.errors import (
    CassetteCorruptError,
    CassetteError,
    CassetteVersionError,
    NotACassetteError,
)

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _cassette_writer_proc import make_exchange

WRITER = pathlib.Path(__file__).parent / "_cassette_writer_proc.py"

# -- strategies ------------------------------------------------------------------------------

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
headers = st.lists(st.tuples(text, text), max_size=6)
reads = st.lists(
    st.builds(Read, st.integers(0, 2**62), st.binary(max_size=200)),
    max_size=60,
)
exchanges = st.builds(
    Exchange,
    request=st.builds(
        RecordedRequest,
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
        url=text.map(lambda s: "https://example.test/" + s),
        headers=headers,
        body=st.binary(max_size=300),
    ),
    status=st.integers(100, 599),
    response_headers=headers,
    reads=reads,
    started_at_ns=st.integers(0, 2**63 - 1),
    headers_ns=st.integers(0, 2**62),
    end_ns=st.integers(0, 2**62),
    outcome=st.sampled_from(list(Outcome)),
    error=st.none() | text,
    http_version=st.sampled_from(["HTTP/1.1", "HTTP/2"]),
    redacted=st.lists(text, max_size=3),
)
files = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def small_exchange(i: int) -> Exchange:
    return Exchange(
        request=RecordedRequest(method="POST", url=f"http://t/{i}", body=b"{}"),
        status=200,
        reads=[Read(1000 + i, b"data: %d\n\n" % i), Read(2000 + i, b"data: [DONE]\n\n")],
        end_ns=3000,
    )


def record_offsets(path: pathlib.Path) -> list[int]:
    """Record boundaries, found with an independent parser of the documented layout."""
    data = path.read_bytes()
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        magic, n = struct.unpack_from("<II", data, pos)
        assert magic == RECORD_MAGIC
        entry = msgspec.msgpack.decode(data[pos + 12 : pos + 8 + n])
        pos += 8 + n + entry[1]
    assert pos == len(data)
    return [*offsets, pos]


def raw_record(entry: list[object], raw: bytes) -> bytes:
    """A record built by hand from the layout in the module docstring."""
    data = zstandard.ZstdCompressor(write_checksum=True, write_content_size=True).compress(raw)
    entry = [entry[0], len(data), len(raw), zlib.crc32(data), *entry[1:]]
    payload = msgspec.msgpack.encode(entry)
    return struct.pack("<III", RECORD_MAGIC, len(payload) + 4, zlib.crc32(payload)) + payload + data


def header_record(version: int) -> bytes:
    info = {
        "magic": "streamtape",
        "format_version": version,
        "writer_version": "9",
        "created_at_ns": 0,
    }
    return raw_record([0, "streamtape", version], msgspec.msgpack.encode(info))


# -- round trips -----------------------------------------------------------------------------


@files
@given(exs=st.lists(exchanges, max_size=5))
def test_random_exchanges_round_trip_exactly(tmp_path: pathlib.Path, exs: list[Exchange]) -> None:
    path = tmp_path / "rt.tape"
    path.unlink(missing_ok=True)
    write_cassette(path, exs)
    cassette = Cassette.open(path)
    assert cassette.exchanges() == exs
    assert cassette.tail is None
    assert [e.url for e in cassette.entries()] == [e.url for e in exs]


@files
@given(exs=st.lists(exchanges, min_size=1, max_size=4))
def test_append_matches_write_cassette(tmp_path: pathlib.Path, exs: list[Exchange]) -> None:
    path = tmp_path / "append.tape"
    path.unlink(missing_ok=True)
    with Cassette.open(path) as cassette:
        for ex in exs:
            cassette.append(ex)
    assert Cassette.open(path).exchanges() == exs


def test_entries_summarise_without_decoding(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "e.tape"
    ex = make_exchange(3, 5000)
    ex.outcome = Outcome.TIMEOUT
    ex.headers_ns = 7
    write_cassette(path, [small_exchange(0), ex])
    cassette = Cassette.open(path)
    entries = list(cassette.entries())
    assert len(entries) == 2
    e = entries[1]
    assert (e.method, e.url, e.status, e.outcome) == ("POST", ex.url, 200, Outcome.TIMEOUT)
    assert (e.reads, e.body_bytes) == (len(ex.reads), len(ex.body))
    assert (e.started_at_ns, e.headers_ns, e.duration_ns) == (ex.started_at_ns, 7, ex.end_ns)
    assert e.first_byte_ns == ex.reads[0].t_ns
    assert e.offset + e.record_bytes == path.stat().st_size
    assert cassette.get(e) == ex
    assert cassette.get(entries[0].offset) == small_exchange(0)
    assert cassette.header is not None
    assert cassette.header.format_version == FORMAT_VERSION


def test_requests_at_reads_only_the_requests_in_the_order_asked(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.tape"
    exs = [make_exchange(i, 300) for i in range(5)]
    write_cassette(path, exs)
    cassette = Cassette.open(path)
    offsets = [e.offset for e in cassette.entries()]
    order = [3, 0, 4, 3]
    assert cassette.requests_at(offsets[i] for i in order) == [exs[i].request for i in order]
    with pytest.raises(CassetteError, match="at byte 1"):  # not where a record starts
        cassette.requests_at([1])


def test_requests_at_checks_the_record_like_a_whole_decode(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.tape"
    write_cassette(path, [make_exchange(0, 300), make_exchange(1, 300)])
    cassette = Cassette.open(path)
    last = list(cassette.entries())[-1]
    data = bytearray(path.read_bytes())
    data[last.offset + last.record_bytes - 6] ^= 0xFF  # inside the last data frame
    path.write_bytes(bytes(data))
    with pytest.raises(CassetteCorruptError, match="checksum"):
        cassette.requests_at([last.offset])


def test_file_is_plain_zstd_frames_per_the_documented_layout(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "z.tape"
    write_cassette(path, [small_exchange(i) for i in range(3)])
    data = path.read_bytes()
    bounds = record_offsets(path)
    assert len(bounds) == 5  # header, three exchanges, end
    sizes = [msgspec.msgpack.decode(data[b + 12 : b + 8 + data[b + 4]])[2] for b in bounds[:-1]]
    with path.open("rb") as f:
        out = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    # A generic zstd decoder skips the index frames and yields the msgpack records.
    assert len(out) == sum(sizes)
    assert msgspec.msgpack.decode(out[: sizes[0]])["magic"] == "streamtape"
    first = msgspec.msgpack.decode(out[sizes[0] : sizes[0] + sizes[1]])
    assert first[:2] == ["POST", "http://t/0"]


def test_missing_and_empty_files_are_empty_cassettes(tmp_path: pathlib.Path) -> None:
    missing = Cassette.open(tmp_path / "new.tape")
    assert missing.exchanges() == []
    assert not (tmp_path / "new.tape").exists()
    empty = tmp_path / "empty.tape"
    empty.touch()
    cassette = Cassette.open(empty)
    assert cassette.exchanges() == [] and cassette.tail is None
    cassette.append(small_exchange(1))
    cassette.close()
    assert Cassette.open(empty).exchanges() == [small_exchange(1)]


def test_appending_in_a_later_session_continues_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.tape"
    write_cassette(path, [small_exchange(0)])
    with Cassette.open(path) as c:
        c.append(small_exchange(1))
    with Cassette.open(path) as c:
        c.append(small_exchange(2))
        assert c.repaired is None
    assert Cassette.open(path).exchanges() == [small_exchange(i) for i in range(3)]
    assert len(record_offsets(path)) == 5  # one header only


def test_concatenated_cassettes_read_as_one(tmp_path: pathlib.Path) -> None:
    a, b, both = tmp_path / "a.tape", tmp_path / "b.tape", tmp_path / "ab.tape"
    write_cassette(a, [small_exchange(0)])
    write_cassette(b, [small_exchange(1), small_exchange(2)])
    both.write_bytes(a.read_bytes() + b.read_bytes())
    assert Cassette.open(both).exchanges() == [small_exchange(i) for i in range(3)]


def test_records_of_an_unknown_kind_are_skipped(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "k.tape"
    write_cassette(path, [small_exchange(0)])
    with path.open("ab") as f:
        f.write(raw_record([7, "a future record"], b"\x00" * 100))
    with Cassette.open(path) as c:
        c.append(small_exchange(1))
    assert Cassette.open(path).exchanges() == [small_exchange(0), small_exchange(1)]


# -- cut tails -------------------------------------------------------------------------------


def test_every_cut_point_yields_a_prefix_and_a_report(tmp_path: pathlib.Path) -> None:
    full = tmp_path / "full.tape"
    exs = [small_exchange(i) for i in range(3)]
    write_cassette(full, exs)
    data = full.read_bytes()
    bounds = record_offsets(full)
    cut = tmp_path / "cut.tape"
    for k in range(len(data) + 1):
        cut.write_bytes(data[:k])
        complete = sum(1 for b in bounds[2:] if b <= k)  # exchange records ending by k
        cassette = Cassette.open(cut)
        assert cassette.exchanges() == exs[:complete], k
        assert [e.url for e in cassette.entries()] == [e.url for e in exs[:complete]]
        if k in bounds:
            assert cassette.tail is None, k
        else:
            assert cassette.tail is not None, k
            assert cassette.tail.offset == max(b for b in bounds if b <= k)
            assert cassette.tail.cut_bytes == k - cassette.tail.offset
            with pytest.raises(CassetteCorruptError) as err:
                Cassette.open(cut, strict=True).exchanges()
            assert err.value.offset == cassette.tail.offset
            assert str(cut) in str(err.value)
        # Appending first cuts the partial record off, so the new record stays readable.
        extra = small_exchange(99)
        with Cassette.open(cut) as writer:
            writer.append(extra)
            assert (writer.repaired is None) == (k in bounds)
        after = Cassette.open(cut)
        assert after.exchanges() == [*exs[:complete], extra], k
        assert after.tail is None


@settings(max_examples=40, deadline=None)
@given(exs=st.lists(exchanges, min_size=1, max_size=4), where=st.floats(0, 1))
def test_random_cut_of_a_larger_file_yields_a_prefix(exs: list[Exchange], where: float) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "x.tape"
        write_cassette(path, exs)
        data = path.read_bytes()
        k = int(len(data) * where)
        path.write_bytes(data[:k])
        cassette = Cassette.open(path)
        got = cassette.exchanges()
        assert got == exs[: len(got)]
        assert (cassette.tail is None) == (k in record_offsets_of(data))


def record_offsets_of(data: bytes) -> set[int]:
    offsets, pos = {0}, 0
    while pos < len(data):
        _, n = struct.unpack_from("<II", data, pos)
        pos += 8 + n + msgspec.msgpack.decode(data[pos + 12 : pos + 8 + n])[1]
        offsets.add(pos)
    return offsets


def test_zero_filled_tail_counts_as_cut(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "zeros.tape"
    write_cassette(path, [small_exchange(0)])
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\0" * 4096)
    cassette = Cassette.open(path)
    assert cassette.exchanges() == [small_exchange(0)]
    assert cassette.tail is not None and cassette.tail.offset == size
    with Cassette.open(path) as c:
        c.append(small_exchange(1))
    assert Cassette.open(path).exchanges() == [small_exchange(0), small_exchange(1)]


# -- damage ----------------------------------------------------------------------------------


def check_damaged(path: pathlib.Path, exs: list[Exchange], flipped_at: int) -> None:
    """Damage must give a CassetteError naming the file, or a clean prefix, never garbage."""
    try:
        cassette = Cassette.open(path)
        got = cassette.exchanges()
        listed = list(cassette.entries())
    except CassetteCorruptError as e:
        assert str(path) in str(e) and e.offset <= flipped_at
        return
    except NotACassetteError as e:
        assert flipped_at < 8, flipped_at  # only the first frame's magic or size
        assert str(path) in str(e)
        return
    assert got == exs[: len(got)]
    assert len(listed) == len(got)
    assert cassette.tail is not None


def test_every_flipped_byte_is_detected(tmp_path: pathlib.Path) -> None:
    full = tmp_path / "full.tape"
    exs = [small_exchange(i) for i in range(2)]
    write_cassette(full, exs)
    data = full.read_bytes()
    bad = tmp_path / "bad.tape"
    for i in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[i] ^= mask
            bad.write_bytes(damaged)
            check_damaged(bad, exs, i)


@settings(max_examples=80, deadline=None)
@given(
    exs=st.lists(exchanges, min_size=1, max_size=3),
    where=st.floats(0, 1, exclude_max=True),
    mask=st.integers(1, 255),
)
def test_random_damage_raises_a_cassette_error(
    exs: list[Exchange], where: float, mask: int
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "x.tape"
        write_cassette(path, exs)
        data = bytearray(path.read_bytes())
        i = int(len(data) * where)
        data[i] ^= mask
        path.write_bytes(data)
        check_damaged(path, exs, i)


def test_corrupt_error_names_file_and_offset(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.tape"
    write_cassette(path, [small_exchange(i) for i in range(3)])
    bounds = record_offsets(path)
    data = bytearray(path.read_bytes())
    data[bounds[3] - 2] ^= 0x40  # inside the data frame of the second exchange
    path.write_bytes(data)
    with pytest.raises(CassetteCorruptError) as err:
        Cassette.open(path).exchanges()
    n = struct.unpack_from("<I", data, bounds[2] + 4)[0]
    assert err.value.offset == bounds[2] + 8 + n
    assert err.value.path == str(path)
    assert f"{path}: corrupt cassette at byte {err.value.offset}" in str(err.value)
    # The listing does not decompress, so it still works and shows all three.
    assert len(list(Cassette.open(path).entries())) == 3


def test_damaged_length_is_not_mistaken_for_a_cut_tail(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "len.tape"
    write_cassette(path, [small_exchange(i) for i in range(3)])
    bounds = record_offsets(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, bounds[1] + 4, 100_000)  # index frame runs past the end
    path.write_bytes(data)
    with pytest.raises(CassetteCorruptError, match="valid record starts at byte"):
        Cassette.open(path).exchanges()
    with pytest.raises(CassetteCorruptError), Cassette.open(path) as c:
        c.append(small_exchange(9))  # an append never truncates good records
    assert path.read_bytes() == data


def test_newer_format_version_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "v2.tape"
    path.write_bytes(header_record(FORMAT_VERSION + 1) + b"anything a future version writes")
    with pytest.raises(CassetteVersionError) as err:
        Cassette.open(path)
    assert err.value.version == FORMAT_VERSION + 1
    assert str(path) in str(err.value) and "upgrade streamtape" in str(err.value)
    with pytest.raises(CassetteVersionError):
        Cassette(path).append(small_exchange(0))
    assert path.read_bytes().endswith(b"future version writes")


def test_a_hand_built_version_1_file_reads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "hand.tape"
    path.write_bytes(header_record(1))
    with Cassette.open(path) as c:
        c.append(small_exchange(5))
    assert Cassette.open(path).exchanges() == [small_exchange(5)]


@pytest.mark.parametrize(
    "content",
    [
        b"# README\nnot a cassette\n",
        zstandard.ZstdCompressor().compress(b"just some zstd"),
        struct.pack("<III", RECORD_MAGIC, 7, zlib.crc32(b"\x92\x00\x00")) + b"\x92\x00\x00",
        b"\x01",
        os.urandom(2000),
    ],
    ids=["text", "zstd", "wrong-entry", "one-byte", "random"],
)
def test_not_a_cassette(tmp_path: pathlib.Path, content: bytes) -> None:
    path = tmp_path / "other.tape"
    path.write_bytes(content)
    with pytest.raises(CassetteError) as err:
        Cassette.open(path).exchanges()
    assert isinstance(err.value, (NotACassetteError, CassetteCorruptError))
    assert str(path) in str(err.value)
    with pytest.raises(CassetteError):
        Cassette(path).append(small_exchange(0))
    assert path.read_bytes() == content  # never appended to a foreign file


def test_text_file_is_not_a_cassette(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(NotACassetteError, match="not a streamtape cassette"):
        Cassette.open(path)


# -- crashes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("run", range(8))
def test_sigkilled_writer_loses_at_most_the_exchange_in_flight(
    tmp_path: pathlib.Path, run: int
) -> None:
    path = tmp_path / "killed.tape"
    target = [1, 3, 7, 12, 20, 31, 2, 5][run]
    body = [100, 300_000, 3_000_000][run % 3]  # large bodies: a kill often lands mid-write
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "0", "-1", str(body)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    confirmed = -1
    for line in proc.stdout:
        confirmed = int(line)
        if confirmed + 1 >= target:
            break
    # Spread the kill over the next append (encode, compress, write); the assertions
    # below hold wherever it lands, so this delay only varies what gets exercised.
    time.sleep(random.Random(run).uniform(0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    cassette = Cassette.open(path)
    got = cassette.exchanges()
    assert len(got) >= confirmed + 1
    assert got == [make_exchange(i, body) for i in range(len(got))]
    # The file stays usable: the next writer cuts any partial record and appends.
    with Cassette.open(path) as c:
        c.append(small_exchange(0))
        assert (c.repaired is None) == (cassette.tail is None)
    assert Cassette.open(path).exchanges() == [*got, small_exchange(0)]


def test_a_short_write_leaves_no_partial_record(tmp_path: pathlib.Path) -> None:
    """A file size limit makes the kernel write part of a record, as a full disk would."""
    path = tmp_path / "limit.tape"
    write_cassette(path, [small_exchange(0)])
    limit = path.stat().st_size + 1000
    script = (
        "import resource, signal, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from _cassette_writer_proc import make_exchange\n"
        "from streamtape.core.cassette import Cassette\n"
        "from streamtape.errors import CassetteError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "c = Cassette.open(sys.argv[1])\n"
        "try:\n"
        "    c.append(make_exchange(1, 50_000))\n"
        "except CassetteError as e:\n"
        "    print('refused', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path), str(WRITER.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("refused"), out
    cassette = Cassette.open(path)
    assert cassette.exchanges() == [small_exchange(0)]
    assert cassette.tail is None


# -- concurrency -----------------------------------------------------------------------------


def keyed(cassette: Cassette) -> dict[str, Exchange]:
    got = cassette.exchanges()
    by_url = {ex.url: ex for ex in got}
    assert len(by_url) == len(got)  # nothing written twice
    return by_url


@pytest.mark.parametrize("shared", [True, False], ids=["one-object", "object-per-thread"])
def test_fifty_threads_append_at_once(tmp_path: pathlib.Path, shared: bool) -> None:
    path = tmp_path / "threads.tape"
    common = Cassette.open(path)
    expected = {}
    for t in range(50):
        for j in range(8):
            ex = make_exchange(1000 * t + j, 2000 + 97 * j)
            expected[ex.url] = ex
    barrier = threading.Barrier(50)

    def work(t: int) -> None:
        cassette = common if shared else Cassette.open(path)
        barrier.wait()
        for j in range(8):
            cassette.append(make_exchange(1000 * t + j, 2000 + 97 * j))
        if not shared:
            cassette.close()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    common.close()
    assert keyed(Cassette.open(path)) == expected
    assert len(record_offsets(path)) == 1 + 400 + 1  # exactly one header


def test_two_hundred_asyncio_tasks_append_at_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tasks.tape"
    expected = {ex.url: ex for ex in (make_exchange(i, 1500 + i) for i in range(200))}

    async def main() -> None:
        cassette = Cassette.open(path)
        start = asyncio.Event()

        async def task(i: int) -> None:
            await start.wait()
            ex = make_exchange(i, 1500 + i)
            if i % 2:
                await asyncio.to_thread(cassette.append, ex)
            else:
                await asyncio.sleep(0)
                cassette.append(ex)

        tasks = [asyncio.create_task(task(i)) for i in range(200)]
        await asyncio.sleep(0)
        start.set()
        await asyncio.gather(*tasks)
        cassette.close()

    asyncio.run(main())
    assert keyed(Cassette.open(path)) == expected


def test_processes_append_at_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "procs.tape"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(100 * p), "25", "20000"],
            stdout=subprocess.DEVNULL,
        )
        for p in range(4)
    ]
    assert [proc.wait() for proc in procs] == [0] * 4
    expected = {
        ex.url: ex
        for p in range(4)
        for ex in (make_exchange(100 * p + i, 20000) for i in range(25))
    }
    assert keyed(Cassette.open(path)) == expected
    assert len(record_offsets(path)) == 1 + 100 + 1


def test_iteration_is_lazy_and_repeatable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lazy.tape"
    write_cassette(path, [small_exchange(i) for i in range(3)])
    cassette = Cassette.open(path)
    it = iter(cassette)
    assert next(it) == small_exchange(0)
    cassette.append(small_exchange(3))  # the file may grow while being read
    assert [e.url for e in cassette] == [f"http://t/{i}" for i in range(4)]
    assert next(it) == small_exchange(1)
    cassette.close()
    assert isinstance(next(iter(cassette.entries())), Entry)


FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_a_v1_file_written_by_0_1_0_reads_identically() -> None:
    """Format v1 is frozen: a file written before any later change reads the same forever."""
    import msgspec

    expected = msgspec.json.decode((FIXTURES / "v1-written-by-0.1.0.json").read_bytes())
    tape = Cassette.open(FIXTURES / "v1-written-by-0.1.0.tape")
    entries = msgspec.json.decode(msgspec.json.encode(list(tape.entries())))
    assert [
        {k: e[k] for k in old} for e, old in zip(entries, expected["entries"], strict=True)
    ] == expected["entries"]
    assert msgspec.json.decode(msgspec.json.encode(tape.exchanges())) == expected["exchanges"]


def test_records_written_today_are_byte_identical_to_v1_records() -> None:
    """The same exchange encodes to the very bytes 0.1.0 wrote (index and data frames)."""
    from streamtape.core._codec import DEFAULT_LEVEL, Codec

    path = FIXTURES / "v1-written-by-0.1.0.tape"
    raw = path.read_bytes()
    tape = Cassette.open(path)
    codec = Codec(DEFAULT_LEVEL)
    for entry in tape.entries():
        old = raw[entry.offset : entry.offset + entry.record_bytes]
        assert codec.exchange_record(tape.get(entry)) == old
