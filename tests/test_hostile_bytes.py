"""No traceback from any bytes: every entry point, pinned cases and structure-aware fuzzing.

Each entry point (``assemble``, ``parse_sse``, ``Cassette.open``, the CLI) gets a fuzz
target; the bounded budget here runs in CI, and ``STREAMTAPE_FUZZ_EXAMPLES=5000`` runs
a longer local campaign.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys

import pytest
from _corpus import corpus_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamtape
from streamtape.core.cassette import Cassette, write_cassette
from streamtape.core.exchange import Exchange, Read, RecordedRequest
from streamtape.errors import CassetteError, SSEError

BUDGET = int(os.environ.get("STREAMTAPE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=BUDGET, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DONE = b"data: [DONE]\n\n"


def chunk(content: bytes) -> bytes:
    head = b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'
    return head + content + b'"}}]}\n\n'


# -- pinned regressions ---------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"", DONE], ids=["cut", "done"])
def test_invalid_utf8_in_content_is_a_problem_not_an_exception(tail: bytes) -> None:
    result = streamtape.assemble(chunk(b"a\xffb") + tail)
    assert result.choices[0].message.content == "a\ufffdb"  # type: ignore[union-attr]
    assert "invalid_utf8" in {p.kind for p in result.outcome.problems}
    assert not result.outcome.ok
    result.to_json()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000],
    ids=["arrays", "objects"],
)
def test_a_body_nested_100000_deep_is_a_problem(body: bytes) -> None:
    result = streamtape.assemble(body)
    assert not result.outcome.ok
    assert result.outcome.problems[0].kind == "invalid_json"


def test_an_event_nested_100000_deep_is_a_problem() -> None:
    result = streamtape.assemble(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n" + DONE)
    assert not result.outcome.ok
    assert {p.kind for p in result.outcome.problems} & {"invalid_json", "invalid_chunk"}


def test_done_alone_is_not_ok() -> None:
    result = streamtape.assemble(DONE)
    assert result.outcome.done and not result.outcome.ok
    assert "empty" in {p.kind for p in result.outcome.problems}


@pytest.mark.parametrize("tail", [b"", DONE], ids=["no-done", "done"])
def test_the_event_size_cap_is_one_rule_with_or_without_done(tail: bytes) -> None:
    big = chunk(b"x" * (33 << 20)) + tail  # past the 32 MiB cap
    result = streamtape.assemble(big)
    assert "invalid_sse" in {p.kind for p in result.outcome.problems}
    assert not result.outcome.ok


def test_an_invalid_sse_stream_is_not_ok() -> None:
    result = streamtape.assemble(chunk(b"hi") + b"data: " + b"y" * (33 << 20))
    assert not result.outcome.ok


# -- fuzz targets ---------------------------------------------------------------------------


def real_streams() -> list[bytes]:
    files = [
        *corpus_files("openai-python"),
        *corpus_files("openai-responses"),
        *corpus_files("anthropic", "*.sse"),
    ]
    bodies = [p.read_bytes() for p in files]
    return bodies or [chunk(b"hello") + chunk(b" world") + DONE]


STREAMS = real_streams()


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A real stream with structure-aware damage: cut, bytes flipped, lines dropped or doubled."""
    body = bytearray(draw(st.sampled_from(STREAMS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "drop_line", "dup_line", "crlf", "insert"]))
        if not body:
            break
        at = draw(st.integers(0, len(body) - 1))
        if kind == "flip":
            body[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del body[at:]
        elif kind in ("drop_line", "dup_line"):
            start = body.rfind(b"\n", 0, at) + 1
            end = body.find(b"\n", at)
            end = len(body) if end < 0 else end + 1
            line = bytes(body[start:end])
            body[start:end] = b"" if kind == "drop_line" else line + line
        elif kind == "crlf":
            body = bytearray(bytes(body).replace(b"\n", b"\r\n", 3))
        else:
            body[at:at] = draw(st.sampled_from([b"\xff\xfe", b'"', b"}", b"\\u", b"\x00", b"\n\n"]))
    return bytes(body)


@FUZZ
@given(
    body=mutated_streams(),
    split=st.integers(1, 64),
    fmt=st.sampled_from([None, *streamtape.formats.FORMATS]),
)
def test_assemble_never_raises_on_damaged_real_streams(
    body: bytes, split: int, fmt: str | None
) -> None:
    """Detected or forced, every format's assembler takes any damage without raising."""
    for source in (body, [body[i : i + split] for i in range(0, len(body), split)]):
        result = streamtape.assemble(source, format=fmt)
        result.to_dict()
        result.to_json()


@pytest.mark.parametrize("fmt", streamtape.formats.FORMATS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n",
    ],
    ids=["whole", "event"],
)
def test_every_format_takes_deep_nesting(fmt: str, body: bytes) -> None:
    result = streamtape.assemble(body, format=fmt)
    assert not result.outcome.ok
    result.to_json()


@FUZZ
@given(body=mutated_streams() | st.binary(max_size=500))
def test_parse_sse_never_raises_but_its_own_error(body: bytes) -> None:
    try:
        events = streamtape.parse_sse(body)
    except SSEError:
        return
    for event in events:
        assert 0 <= event.start <= event.end <= len(body)


def timed(body: bytes) -> Exchange:
    reads = [Read(1000 * (i + 1), body[i : i + 97]) for i in range(0, len(body), 97)]
    return Exchange(
        request=RecordedRequest(method="POST", url="http://t/v1/chat/completions"),
        status=200,
        reads=reads,
        end_ns=10**8,
    )


@FUZZ
@given(body=mutated_streams())
def test_assemble_of_a_recorded_exchange_never_raises(body: bytes) -> None:
    result = streamtape.assemble(timed(body))
    result.to_json()


# -- the CLI, as a user runs it, on damaged cassettes ---------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    """Exit status and stderr (stdout may be raw body bytes: ``cat``)."""
    done = subprocess.run(
        [sys.executable, "-m", "streamtape", *args], capture_output=True, timeout=60
    )
    return done.returncode, done.stderr.decode("utf-8", "replace")


@settings(
    max_examples=max(8, BUDGET // 15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=mutated_streams(), flips=st.lists(st.floats(0, 1), max_size=3), cut=st.floats(0.3, 1))
def test_the_cli_answers_damage_with_one_line(
    tmp_path: pathlib.Path, body: bytes, flips: list[float], cut: float
) -> None:
    path = tmp_path / "f.tape"
    write_cassette(path, [timed(body), timed(STREAMS[0])])
    data = bytearray(path.read_bytes())
    for where in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 0x5A
    path.write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    for command in (["ls"], ["show"], ["decode"], ["cat"]):
        status, stderr = run_cli(*command, str(path))
        assert "Traceback" not in stderr, stderr
        if status:
            assert status == 1 and stderr.strip().count("\n") == 0, stderr
    with contextlib.suppress(CassetteError):
        Cassette.open(path, on_corrupt="skip").exchanges()
