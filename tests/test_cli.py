"""The command line, run as a user runs it: a subprocess, its exit status and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamtape import Cassette
from streamtape.formats import assemble, summarize


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "streamtape", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in proc.stderr


@pytest.fixture(scope="module")
def demo_tape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("demo") / "demo.tape"
    proc = run("demo", "--speed", "50", "--out", out)
    assert f"cassette left at {out.resolve()}" in proc.stdout
    assert "replay err" in proc.stdout and "x smaller" in proc.stdout
    yield out


def test_demo_records_every_dialect_without_secrets(demo_tape: Path) -> None:
    exchanges = Cassette.open(demo_tape).exchanges()
    assert [e.status for e in exchanges] == [200] * 6
    assert sum(e.is_event_stream for e in exchanges) == 5
    paths = [e.request.url.rsplit("/v1", 1)[1] for e in exchanges]
    assert paths[4:] == ["/responses", "/messages"]
    formats = {summarize(assemble(e)).format for e in exchanges if e.is_event_stream}
    assert formats == {"openai_chat", "openai_text", "openai_responses", "anthropic_messages"}
    assert all(e.request.header("authorization") == "<redacted>" for e in exchanges)


def test_ls_lists_every_exchange_under_a_header(demo_tape: Path) -> None:
    header, *lines = run("ls", demo_tape).stdout.splitlines()
    columns = "# method path model status ended reads bytes ttft duration tok/s"
    assert header.split() == columns.split(" ")
    assert len(lines) == 6
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4", "5", "6"]
    assert "/v1/chat/completions" in lines[0] and "/v1/embeddings" in lines[3]
    assert all("complete" in line for line in lines)


def test_show_and_cat(demo_tape: Path) -> None:
    shown = run("show", demo_tape, "1").stdout
    assert "POST http://127.0.0.1:" in shown and "<redacted>" in shown
    assert "text/event-stream" in shown
    body = subprocess.run(
        [sys.executable, "-m", "streamtape", "cat", str(demo_tape), "1"],
        capture_output=True,
        check=True,
    ).stdout
    assert body == Cassette.open(demo_tape).exchanges()[0].body


def test_decode_prints_the_reassembled_completion(demo_tape: Path) -> None:
    completion = json.loads(run("decode", demo_tape, "1").stdout)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"]
    tool = json.loads(run("decode", demo_tape, "2").stdout)
    assert tool["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_missing_index_is_a_clear_error(demo_tape: Path) -> None:
    assert_one_line_error(run("show", demo_tape, "99", ok=False), "no exchange #99")


def test_bad_files_give_one_line_errors(tmp_path: Path, demo_tape: Path) -> None:
    missing = tmp_path / "nope.tape"
    assert_one_line_error(run("ls", missing, ok=False), str(missing))
    junk = tmp_path / "junk.tape"
    junk.write_bytes(b"this is not a cassette at all")
    assert_one_line_error(run("ls", junk, ok=False), str(junk), "not a streamtape cassette")
    corrupt = tmp_path / "corrupt.tape"
    data = bytearray(demo_tape.read_bytes())
    entries = list(Cassette.open(demo_tape).entries())
    middle = len(data) // 2
    hit = next(
        n for n, e in enumerate(entries, 1) if e.offset <= middle < e.offset + e.record_bytes
    )
    data[middle : middle + 64] = bytes(64)
    corrupt.write_bytes(bytes(data))
    proc = run("decode", corrupt, str(hit), ok=False)
    assert_one_line_error(proc, str(corrupt), "byte")


def test_cut_cassette_lists_what_survived_and_warns(tmp_path: Path, demo_tape: Path) -> None:
    cut = tmp_path / "cut.tape"
    data = demo_tape.read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    proc = run("ls", cut)
    assert len(proc.stdout.splitlines()) == 1 + 5  # the header, then all but the cut last
    assert "warning:" in proc.stderr and str(cut) in proc.stderr


def test_demo_refuses_to_overwrite_other_files(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    assert_one_line_error(run("demo", "--out", precious, ok=False), str(precious))
    assert precious.read_text() == "keep me"


def test_help_lists_the_commands() -> None:
    out = run("--help").stdout
    for command in ("demo", "ls", "show", "cat", "decode"):
        assert command in out
