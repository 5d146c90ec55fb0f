"""Damage in the middle of a cassette: one bad record must not hide the good ones after it.

Readers stop with a clear error by default (naming the record and the repair command);
``on_corrupt="skip"`` and ``streamtape repair`` keep every intact exchange. Declared
sizes cannot make a reader allocate more than the file can hold.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import tracemalloc
import zlib

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtape.core._codec import MAX_RECORD_BYTES
from streamtape.core.cassette import RECORD_MAGIC, Cassette, repair, write_cassette
from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.errors import CassetteCorruptError, CassetteError


def exchange(i: int, size: int = 40) -> Exchange:
    body = b"".join(b'data: {"n": %d, "k": %d}\n\n' % (i, k) for k in range(size))
    return Exchange(
        request=RecordedRequest(method="POST", url=f"http://t/v1/chat/completions?i={i}"),
        status=200,
        reads=[
            Read(1000 * (k + 1), body[k * 40 : (k + 1) * 40]) for k in range(len(body) // 40 + 1)
        ],
        end_ns=10**9,
    )


def records(data: bytes) -> list[tuple[int, int, int]]:
    """(record start, data frame start, record end) of every record, by the documented layout."""
    out, pos = [], 0
    while pos < len(data):
        magic, n = struct.unpack_from("<II", data, pos)
        assert magic == RECORD_MAGIC
        clen = msgspec.msgpack.decode(data[pos + 12 : pos + 8 + n])[1]
        out.append((pos, pos + 8 + n, pos + 8 + n + clen))
        pos += 8 + n + clen
    return out


@pytest.fixture
def damaged(tmp_path: pathlib.Path) -> tuple[pathlib.Path, list[Exchange], set[int]]:
    """Ten exchanges with records 2, 5 and 8 damaged three different ways."""
    path = tmp_path / "d.tape"
    originals = [exchange(i) for i in range(10)]
    write_cassette(path, originals)
    data = bytearray(path.read_bytes())
    recs = records(bytes(data))  # recs[0] is the header; exchange i is recs[i + 1]
    start, data_at, end = recs[3]
    data[(data_at + end) // 2] ^= 0x55  # exchange 2: a flipped bit in its compressed data
    start, data_at, end = recs[6]
    data[start + 10] ^= 0xFF  # exchange 5: its index checksum no longer matches
    start, data_at, end = recs[9]
    data[start : start + 4] = b"JUNK"  # exchange 8: its frame magic is gone
    path.write_bytes(bytes(data))
    return path, originals, {2, 5, 8}


def test_default_readers_stop_at_damage_naming_the_record_and_the_repair(
    damaged: tuple[pathlib.Path, list[Exchange], set[int]],
) -> None:
    path, _, _ = damaged
    with pytest.raises(CassetteCorruptError) as err:
        Cassette.open(path).exchanges()
    message = str(err.value)
    assert str(path) in message and f"at byte {err.value.offset}" in message
    assert f"streamtape repair {path}" in message


def test_skip_yields_every_intact_exchange(
    damaged: tuple[pathlib.Path, list[Exchange], set[int]],
) -> None:
    path, originals, bad = damaged
    tape = Cassette.open(path, on_corrupt="skip")
    got = tape.exchanges()
    assert got == [ex for i, ex in enumerate(originals) if i not in bad]
    assert len(tape.damaged) == 3
    offsets = [r[0] for r in records_of_original(originals, path.parent)]
    assert [d.offset for d in tape.damaged] == [offsets[i + 1] for i in sorted(bad)]
    assert all(d.skipped_bytes > 0 and d.reason for d in tape.damaged)
    # The listing reads only the index frames: the flipped data bit is invisible to it.
    listed = list(Cassette.open(path, on_corrupt="skip").entries())
    assert [e.url for e in listed] == [
        originals[i].request.url for i in range(10) if i not in {5, 8}
    ]


def records_of_original(
    originals: list[Exchange], folder: pathlib.Path
) -> list[tuple[int, int, int]]:
    clean = folder / "clean.tape"
    write_cassette(clean, originals)
    return records(clean.read_bytes())


def test_repair_keeps_the_intact_exchanges_and_then_reads_cleanly(
    damaged: tuple[pathlib.Path, list[Exchange], set[int]],
) -> None:
    path, originals, bad = damaged
    report = repair(path)
    assert report.rewritten and report.kept == 7 and len(report.damaged) == 3
    assert Cassette.open(path).exchanges() == [ex for i, ex in enumerate(originals) if i not in bad]
    again = repair(path)
    assert not again.rewritten and again.kept == 7


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamtape", *args], capture_output=True, text=True, timeout=60
    )


def test_repair_command_as_a_user_runs_it(
    damaged: tuple[pathlib.Path, list[Exchange], set[int]],
) -> None:
    path, _, _ = damaged
    before = path.read_bytes()
    dry = run_cli("repair", str(path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    facts = json.loads(dry.stdout)
    assert facts["kept"] == 7 and len(facts["damaged"]) == 3 and not facts["rewritten"]
    assert path.read_bytes() == before  # a dry run writes nothing
    ls_before = run_cli("ls", str(path))
    assert ls_before.returncode == 1 and "streamtape repair" in ls_before.stderr
    done = run_cli("repair", str(path))
    assert done.returncode == 0, done.stderr
    assert "kept 7 exchanges" in done.stdout and done.stdout.count("damaged record") == 3
    assert run_cli("ls", str(path)).returncode == 0


def test_repair_of_a_missing_file_is_one_line(tmp_path: pathlib.Path) -> None:
    result = run_cli("repair", str(tmp_path / "nope.tape"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such cassette" in result.stderr


def forged_record(index_tail: list[object], data: bytes) -> bytes:
    """A record whose index declares what we like, with a valid index checksum."""
    entry = msgspec.msgpack.encode([1, len(data), *index_tail])
    payload = struct.pack("<I", zlib.crc32(entry)) + entry
    return struct.pack("<II", RECORD_MAGIC, len(payload)) + payload + data


@pytest.mark.parametrize("declared", [3 << 30, MAX_RECORD_BYTES, 900 << 20])
def test_a_declared_size_costs_what_the_file_holds(tmp_path: pathlib.Path, declared: int) -> None:
    """A 98 KB file declaring gigabytes is refused without allocating them."""
    path = tmp_path / "forged.tape"
    write_cassette(path, [exchange(0)])
    garbage = os.urandom(98_000)
    tail = [declared, zlib.crc32(garbage), "POST", "http://t/", 200, 1, 1, 0, 0, 0, 0, "complete"]
    with path.open("ab") as f:
        f.write(forged_record(tail, garbage))
    tracemalloc.start()
    try:
        with pytest.raises(CassetteCorruptError) as err:
            Cassette.open(path).exchanges()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"reading the forged record peaked at {peak} bytes"
    assert "data frame" in str(err.value)


# -- no byte sequence escapes the error tree -------------------------------------------------


def base_cassette(folder: pathlib.Path) -> bytes:
    path = folder / "base.tape"
    if not path.exists():
        write_cassette(path, [exchange(i, size=5) for i in range(4)])
    return path.read_bytes()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.floats(0.05, 1),
    mode=st.sampled_from(["raise", "skip"]),
)
def test_mutated_cassettes_raise_only_our_errors(
    tmp_path: pathlib.Path, edits: list[tuple[float, int]], cut: float, mode: str
) -> None:
    data = bytearray(base_cassette(tmp_path))
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    data = data[: max(1, int(cut * len(data)))]
    path = tmp_path / "m.tape"
    path.write_bytes(bytes(data))
    try:
        tape = Cassette.open(path, on_corrupt=mode)  # type: ignore[arg-type]
        list(tape.entries())
        tape.exchanges()
    except CassetteError:
        pass


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_our_errors(tmp_path: pathlib.Path, blob: bytes) -> None:
    path = tmp_path / "a.tape"
    path.write_bytes(blob)
    for mode in ("raise", "skip"):
        try:
            tape = Cassette.open(path, on_corrupt=mode)  # type: ignore[arg-type]
            list(tape.entries())
            tape.exchanges()
        except CassetteError:
            pass


def test_sigkill_during_repair_leaves_a_readable_cassette(tmp_path: pathlib.Path) -> None:
    """repair writes beside and renames: killed at any moment, the path reads."""
    path = tmp_path / "big.tape"
    originals = [exchange(i, size=400) for i in range(300)]
    write_cassette(path, originals)
    data = bytearray(path.read_bytes())
    _, data_at, end = records(bytes(data))[10]
    data[(data_at + end) // 2] ^= 0x01
    damaged_bytes = bytes(data)
    code = f"from streamtape import repair; print('go', flush=True); repair({str(path)!r})"
    # The property holds whenever the kill lands; the delays only vary where that is.
    for delay in (0.0, 0.01, 0.03, 0.08, 0.2):
        path.write_bytes(damaged_bytes)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "go"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        got = Cassette.open(path, on_corrupt="skip").exchanges()
        assert got == originals[:9] + originals[10:]  # the original, or the repaired file
        for leftover in tmp_path.glob(".*.tmp"):
            leftover.unlink()
