"""The SSE parser against the WHATWG rules, feeding patterns, real streams and a reference.

Every rule is checked fed whole and one byte at a time, because the fast path (whole
LF-only reads) and the line state machine (CR, partial lines) must agree byte for byte.
"""

from __future__ import annotations

import re

import msgspec
import pytest
from _corpus import corpus_files, require_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtape.core.exchange import Read
from streamtape.core.sse import SSEEvent, SSEParser, parse_sse
from streamtape.errors import SSEError, StreamtapeError


def feed_all(reads: list[bytes], *, times: bool = False) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i, r in enumerate(reads):
        events += parser.feed(r, i if times else None)
    events += parser.finish()
    return events, parser


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def both(body: bytes) -> list[SSEEvent]:
    """Parse whole and one byte at a time; they must agree; return the events."""
    whole, p1 = feed_all([body])
    split, p2 = feed_all(bytewise(body))
    assert whole == split
    assert p1.comments == p2.comments
    assert p1.bytes_fed == p2.bytes_fed == len(body)
    return whole


def datas(events: list[SSEEvent]) -> list[bytes]:
    return [e.data for e in events]


# -- line endings -------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_each_line_ending(eol: bytes) -> None:
    body = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    events = both(body)
    assert datas(events) == [b"a\nb", b"c"]
    assert all(e.complete for e in events)


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_one_event_per_read_matches_bytewise(eol: bytes) -> None:
    # Reads holding exactly one event take a shortcut; it must agree with the machine.
    reads = [b"data: {}" + eol + eol, b"id: 3" + eol + b"data: x" + eol + eol]
    reads += [b"data: " + b"%d" % i + eol + eol for i in range(3)]
    events, _ = feed_all(reads)
    assert events == both(b"".join(reads))
    assert datas(events) == [b"{}", b"x", b"0", b"1", b"2"]
    assert [e.id for e in events] == [None, "3", "3", "3", "3"]


def test_mixed_line_endings() -> None:
    # `\n\r\n` is a boundary: openai-python never sees it and buffers to EOF.
    body = b"data: a\n\r\ndata: b\r\rdata: c\r\n\ndata: d\r\n\r\n"
    assert datas(both(body)) == [b"a", b"b", b"c", b"d"]


def test_cr_at_end_of_read_dispatches_at_once() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # The blank line's CR ends the event now, not when the next read shows what follows.
    [event] = parser.feed(b"\r")
    assert event.data == b"a"
    # The LF of that CRLF arrives in the next read and is swallowed, not a new blank line.
    assert parser.feed(b"\ndata: b\r") == []
    assert [e.data for e in parser.feed(b"\r")] == [b"b"]


def test_cr_read_then_lf_read_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []  # the LF completes the CRLF, it is not a blank line
    assert datas(parser.feed(b"\n")) == [b"a"]


def test_only_one_lf_swallowed_after_cr() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\r")
    assert datas(parser.feed(b"\n\n")) == [b"a"]


def test_crlf_event_end_excludes_trailing_lf() -> None:
    body = b"data: x\r\n\r\ndata: y\r\n\r\n"
    first, second = both(body)
    assert (first.start, first.end) == (0, 10)
    assert (second.start, second.end) == (11, 21)
    assert body[first.start : first.end] == b"data: x\r\n\r"


def test_unicode_line_separators_do_not_split() -> None:
    payload = '{"c":"a\u2028b\u2029c\u0085d"}'.encode()
    [event] = both(b"data: " + payload + b"\n\n")
    assert event.data == payload
    assert msgspec.json.decode(event.data) == {"c": "a\u2028b\u2029c\u0085d"}
    assert datas(both(b"data: a\x0bb\x0cc\x1cd\n\n")) == [b"a\x0bb\x0cc\x1cd"]


def test_utf8_split_across_reads() -> None:
    body = 'data: {"c":"héllo 😀 wörld"}\n\n'.encode()
    for cut in range(1, len(body)):
        events, _ = feed_all([body[:cut], body[cut:]])
        assert [e.text for e in events] == ['{"c":"héllo 😀 wörld"}']


def test_invalid_utf8_replaced_in_text_kept_in_data() -> None:
    [event] = both(b"data: a\xffb\n\n")
    assert event.data == b"a\xffb"
    assert event.text == "a\ufffdb"


# -- BOM ----------------------------------------------------------------------------


def test_one_bom_stripped_and_counted_in_offsets() -> None:
    [event] = both(b"\xef\xbb\xbfdata: x\n\n")
    assert event.data == b"x"
    assert (event.start, event.end) == (3, 12)


def test_only_one_bom_stripped() -> None:
    # The second BOM is part of the first field name, which is then unknown.
    assert datas(both(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n")) == [b"y"]


def test_bom_split_across_reads() -> None:
    events, _ = feed_all([b"\xef", b"\xbb", b"\xbfdata: x\n\n"])
    assert datas(events) == [b"x"]
    assert events[0].start == 3


def test_bom_prefix_that_is_not_a_bom() -> None:
    events, _ = feed_all([b"\xef", b"\xbbdata: x\n\ndata: y\n\n"], times=True)
    assert datas(events) == [b"y"]
    assert datas(both(b"\xef\xbb")) == []


def test_bom_not_stripped_later_in_stream() -> None:
    [event] = both(b"data: \xef\xbb\xbfx\n\n")
    assert event.data == b"\xef\xbb\xbfx"


# -- fields -------------------------------------------------------------------------


def test_comments_ignored_and_counted() -> None:
    body = b": keep-alive\n\n:ping\ndata: x\n: inside\n\n: OPENROUTER PROCESSING\n\n"
    events = both(body)
    assert datas(events) == [b"x"]
    _, parser = feed_all([body])
    assert parser.comments == 4


def test_comments_count_while_pending() -> None:
    parser = SSEParser()
    parser.feed(b": one\n: two\ndata: x")
    assert parser.comments == 2
    parser.feed(b"\n\n")
    assert parser.comments == 2


def test_data_space_rule() -> None:
    body = b"data:x\n\ndata: x\n\ndata:  x\n\ndata\n\ndata:\n\n"
    assert datas(both(body)) == [b"x", b"x", b" x", b"", b""]


def test_multiline_data_joined_with_lf() -> None:
    # WHATWG's own example: `data\n\ndata\ndata\n\n` fires "" then "\n".
    assert datas(both(b"data\n\ndata\ndata\n\n")) == [b"", b"\n"]
    assert datas(both(b"data: a\ndata: \ndata: b\n\n")) == [b"a\n\nb"]


def test_event_type() -> None:
    body = b"event: delta\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\nevent: a\nevent: b\ndata: 4\n\n"
    assert [(e.event, e.data) for e in both(body)] == [
        ("delta", b"1"),
        ("message", b"2"),
        ("message", b"3"),
        ("b", b"4"),
    ]


def test_event_without_data_not_dispatched() -> None:
    assert both(b"event: ping\n\n") == []
    assert datas(both(b"event: ping\n\ndata: x\n\n")) == [b"x"]


def test_id_is_sticky() -> None:
    body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\nid:\ndata: e\n\n"
    assert [(e.data, e.id) for e in both(body)] == [
        (b"a", "1"),
        (b"b", "1"),
        (b"c", "2"),
        (b"d", None),
        (b"e", None),
    ]


def test_id_with_nul_ignored() -> None:
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert [e.id for e in both(body)] == ["1", "1"]
    parser = SSEParser()
    parser.feed(body)
    assert parser.last_event_id == "1"


def test_id_without_data_updates_id_but_fires_nothing() -> None:
    assert [e.id for e in both(b"id: 7\n\ndata: x\n\n")] == ["7"]


def test_e36_id_then_extra_blank_lines_gives_nothing() -> None:
    # openai-python dispatches an empty event for each extra blank line after an id (E36).
    body = b"id: 1\ndata: x\n\n\n\n\nid: 2\n\n\n\n"
    events = both(body)
    assert [(e.data, e.id) for e in events] == [(b"x", "1")]
    assert both(b"id: 1\n\n\n\n\n") == []


def test_retry_ascii_digits_only() -> None:
    body = (
        b"retry: 1000\ndata: a\n\n"
        b"retry: 1_000\ndata: b\n\n"
        b"retry:  5\ndata: c\n\n"
        b"retry: \xd9\xa1\ndata: d\n\n"
        b"retry:\ndata: e\n\n"
        b"retry: -1\ndata: f\n\n"
        b"retry: 007\ndata: g\n\n"
    )
    assert [e.retry for e in both(body)] == [1000, None, None, None, None, None, 7]
    _, parser = feed_all([body])
    assert parser.retry == 7


def test_unknown_fields_and_colonless_lines_ignored() -> None:
    body = b"foo: bar\nDATA: x\nData: y\ndata: z\nnocolon\n\n"
    assert datas(both(body)) == [b"z"]


def test_field_value_may_contain_colons() -> None:
    assert datas(both(b'data: {"a":"b:c"}\n\n')) == [b'{"a":"b:c"}']


# -- end of input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b"data: a\n\ndata: {trunc", b"{trunc"),
        (b"data: a\n\ndata: b\n", b"b"),
        (b"data: a\n\ndata: b\r", b"b"),
        (b"data: a\n\ndata: b\r\n", b"b"),
        (b"data: a\n\ndata: b\ndata: c\n: comment", b"b\nc"),
    ],
)
def test_unterminated_tail_reported(body: bytes, data: bytes) -> None:
    events = both(body)
    assert datas(events) == [b"a", data]
    tail = events[-1]
    assert not tail.complete
    assert tail.end == len(body)
    assert events[0].complete


def test_no_tail_without_data() -> None:
    assert both(b"data: a\n\nevent: x\nid: 3\n") == both(b"data: a\n\n")
    assert datas(both(b"data: a\n\n: comment")) == [b"a"]


def test_tail_times() -> None:
    events, _ = feed_all([b"data: a\n", b"data: b"], times=True)
    [tail] = events
    assert (tail.t_start_ns, tail.t_end_ns, tail.complete) == (0, 1, False)


def test_finish_is_final() -> None:
    parser = SSEParser()
    parser.feed(b"data: a")
    assert datas(parser.finish()) == [b"a"]
    assert parser.finish() == []
    with pytest.raises(SSEError, match="after finish"):
        parser.feed(b"data: b\n\n")


def test_empty_reads_are_harmless() -> None:
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n") == []
    assert datas(parser.feed(b"\n")) == [b"a"]


# -- offsets and times --------------------------------------------------------------


def test_offsets_and_times() -> None:
    reads = [b": hi\n\ndata: a\n\ndata: b", b"\ndata: c\n", b"\nevent: x\ndata: d\n\n"]
    events, _ = feed_all(reads, times=True)
    body = b"".join(reads)
    assert [(e.data, e.start, e.end, e.t_start_ns, e.t_end_ns) for e in events] == [
        (b"a", 6, 15, 0, 0),
        (b"b\nc", 15, 32, 0, 2),
        (b"d", 32, 50, 2, 2),
    ]
    for e in events:
        assert [x.data for x in parse_sse(body[e.start : e.end])] == [e.data]


def test_no_times_when_reads_have_none() -> None:
    [event] = both(b"data: a\n\n")
    assert event.t_start_ns is None and event.t_end_ns is None


def test_parse_sse_takes_reads_bytes_and_iterables() -> None:
    reads = [Read(10, b"data: a"), Read(25, b"\n\n")]
    [event] = parse_sse(reads)
    assert (event.t_start_ns, event.t_end_ns) == (10, 25)
    assert parse_sse([b"data: a", b"\n\n"]) == parse_sse(b"data: a\n\n")
    assert parse_sse(bytearray(b"data: a\n\n"))[0].data == b"a"
    assert type(parse_sse([bytearray(b"data: a\n\n")])[0].data) is bytes


# -- size and linearity -------------------------------------------------------------


def test_huge_event_in_tiny_reads_completes() -> None:
    payload = b"x" * (2 * 1024 * 1024)
    body = b"data: " + payload + b"\n\n"
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(0, len(body), 64):
        events += parser.feed(body[i : i + 64])
    assert len(events) == 1 and events[0].data == payload


def test_huge_multiline_event_with_crlf_in_tiny_reads() -> None:
    body = b"".join(b"data: %d\r\n" % i for i in range(20000)) + b"\r\n"
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(0, len(body), 7):
        events += parser.feed(body[i : i + 7])
    assert len(events) == 1 and events[0].data.count(b"\n") == 19999


@pytest.mark.parametrize("read", [1, 7, 100, 10_000])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_max_event_bytes_names_offset(read: int, eol: bytes) -> None:
    body = b"data: ok" + eol + eol + b"data: " + b"y" * 2000 + eol + eol
    parser = SSEParser(max_event_bytes=1000)
    start = 8 + 2 * len(eol)
    with pytest.raises(SSEError, match=rf"starting at byte {start}\b.*max_event_bytes \(1000\)"):
        for i in range(0, len(body), read):
            parser.feed(body[i : i + read])
        parser.finish()


def test_max_event_bytes_is_a_streamtape_error_and_limit_is_inclusive() -> None:
    limit = 100
    ok = b"data: " + b"z" * (limit - 7) + b"\n\n"  # 100 bytes of lines before the blank line
    assert len(feed_all([ok])[0]) == 1
    parser = SSEParser(max_event_bytes=limit)
    assert len(parser.feed(ok)) == 1
    with pytest.raises(StreamtapeError):
        SSEParser(max_event_bytes=limit).feed(b"data: " + b"z" * limit + b"\n\n")


def test_max_event_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SSEParser(max_event_bytes=0)


# -- real recorded streams ----------------------------------------------------------


def test_real_openai_streams() -> None:
    require_corpus()
    files = corpus_files("openai-python")
    for path in files:
        body = path.read_bytes()
        events = both(body)
        assert events, path
        for e in events:
            assert e.complete and e.event == "message"
            if e.data != b"[DONE]":
                chunk = msgspec.json.decode(e.data)
                assert chunk["object"] == "chat.completion.chunk", path
        # One read per 100 bytes, with times, agrees too.
        reads = [Read(i, body[i : i + 100]) for i in range(0, len(body), 100)]
        timed = parse_sse(reads)
        assert [msgspec.structs.replace(e, t_start_ns=None, t_end_ns=None) for e in timed] == (
            events
        )
        for e in timed:
            assert e.t_start_ns == e.start // 100 * 100
            assert e.t_end_ns == (e.end - 1) // 100 * 100


# -- property tests -----------------------------------------------------------------


def reference(body: bytes) -> list[tuple[str, str, str | None, int | None, bool]]:  # noqa: C901 - the spec, step by step
    """The WHATWG algorithm, transcribed: decode, split lines, interpret each line.

    The one extension: at end of input the unfinished event is reported, flagged.
    """
    text = body.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)
    unterminated = lines.pop()
    events: list[tuple[str, str, str | None, int | None, bool]] = []
    data = ""
    etype = ""
    last_id = ""
    retry: int | None = None

    def process(line: str, at_eof: bool = False) -> None:
        nonlocal data, etype, last_id, retry
        if line == "":
            if data:
                events.append((etype or "message", data[:-1], last_id or None, retry, True))
            data = etype = ""
            retry = None
            return
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            etype = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)

    for line in lines:
        process(line)
    if unterminated:
        process(unterminated)
    if data:
        events.append((etype or "message", data[:-1], last_id or None, retry, False))
    return events


def summary(events: list[SSEEvent]) -> list[tuple[str, str, str | None, int | None, bool]]:
    return [(e.event, e.text, e.id, e.retry, e.complete) for e in events]


EOLS = st.sampled_from(["\n", "\r", "\r\n"])
VALUES = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
    max_size=12,
) | st.sampled_from(['{"a": 1}', "[DONE]", " lead", "a\u2028b", "x\0y", "", "é😀"])


@st.composite
def event_lines(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["data", "data", "data", "event", "id", "retry", ":", "junk"]))
        value = draw(VALUES)
        if kind == "retry":
            value = draw(st.sampled_from(["100", "007", "1_0", " 5", "", "x"]) | VALUES)
        if kind == ":":
            lines.append(":" + value)
        elif kind == "junk":
            lines.append(draw(st.sampled_from(["nocolon", "data", "Data: x", "id", "event:"])))
        else:
            sep = draw(st.sampled_from([": ", ":", ":  "]))
            lines.append(kind + sep + value)
    return lines


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Events serialized with random line endings, extra blank lines, BOM and tail."""
    out = ["\ufeff"] if draw(st.booleans()) else []
    for lines in draw(st.lists(event_lines(), max_size=6)):
        for line in lines:
            out.append(line + draw(EOLS))
        for _ in range(draw(st.integers(0, 2))):
            out.append(draw(EOLS))
    if draw(st.booleans()):
        out.append("data: tail" + draw(st.sampled_from(["", "\n", "\r"])))
    return "".join(out).encode()


RAW = st.binary(max_size=80) | st.lists(
    st.sampled_from(
        [
            *(b"data", b"data: ", b":", b" ", b"\n", b"\r", b"\r\n", b"x", b"id", b"\x00"),
            *(b"event", b"retry", b"5", b"\xef\xbb\xbf", b"\xe2\x80\xa8", b"\xff", b"\xc3"),
        ]
    ),
    max_size=40,
).map(b"".join)


def splits(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces, prev = [], 0
    for p in [*points, len(body)]:
        pieces.append(body[prev:p])
        prev = p
    return pieces


@settings(max_examples=400, deadline=None)
@given(body=streams() | RAW, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_random_splits_agree_with_whole_and_reference(body: bytes, cuts: list[int]) -> None:
    check_splits(body, cuts)


@st.composite
def typical_streams(draw: st.DrawFn) -> bytes:
    """Mostly one-line ``data: `` events with one line ending: the fast paths' shape."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    out = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["data"] * 8 + ["other", "blank", "mixed"]))
        if kind == "data":
            out.append("data: " + draw(VALUES) + eol + eol)
        elif kind == "other":
            out.append(eol.join(draw(event_lines())) + eol + eol)
        elif kind == "blank":
            out.append(eol)
        else:
            out.append("data: " + draw(VALUES) + draw(EOLS) + draw(EOLS))
    if draw(st.booleans()):
        out.append("data: tail" + draw(st.sampled_from(["", eol, eol + "\r"])))
    return "".join(out).encode()


@settings(max_examples=300, deadline=None)
@given(body=typical_streams(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_typical_streams_in_random_splits(body: bytes, cuts: list[int]) -> None:
    check_splits(body, cuts)


def test_crlf_fast_path_offsets_and_the_rest_of_the_read() -> None:
    body = b"data: a\r\n\r\ndata: bc\r\n\r\ndata: d\r\n\r"
    parser = SSEParser()
    events = parser.feed(body, 5)
    assert [(e.data, e.start, e.end, e.t_start_ns, e.t_end_ns) for e in events] == [
        (b"a", 0, 10, 5, 5),
        (b"bc", 11, 22, 5, 5),
        (b"d", 23, 33, 5, 5),  # the CR at the end of the read dispatched at once
    ]
    assert parser.feed(b"\n") == []  # the LF completing that CRLF
    assert parser.finish() == []
    assert [msgspec.structs.replace(e, t_start_ns=None, t_end_ns=None) for e in events] == both(
        body
    )


def test_lf_block_carried_over_keeps_its_first_read_time() -> None:
    reads = [b"data: a\n\ndata: b", b"c\n\ndata: d\n\n:x", b"\n\ndata: e\n", b"\n"]
    events, parser = feed_all(reads, times=True)
    assert [(e.data, e.start, e.end, e.t_start_ns, e.t_end_ns) for e in events] == [
        (b"a", 0, 9, 0, 0),
        (b"bc", 9, 19, 0, 1),
        (b"d", 19, 28, 1, 1),
        (b"e", 32, 41, 2, 3),
    ]
    assert parser.comments == 1


def check_splits(body: bytes, cuts: list[int]) -> None:
    whole, p_whole = feed_all([body])
    reads = splits(body, cuts)
    split, p_split = feed_all(reads, times=True)
    # Same events, same offsets, whichever path each read took.
    assert [msgspec.structs.replace(e, t_start_ns=None, t_end_ns=None) for e in split] == whole
    assert p_split.comments == p_whole.comments
    assert datas(feed_all(bytewise(body))[0]) == datas(whole)
    assert summary(whole) == reference(body)
    # Times are those of the reads holding the first and the last byte.
    bounds = []
    pos = 0
    for r in reads:
        bounds.append((pos, pos + len(r)))
        pos += len(r)

    def read_at(offset: int) -> int:
        return next(i for i, (a, b) in enumerate(bounds) if a <= offset < b)

    for e in split:
        assert e.t_start_ns == read_at(e.start)
        assert e.t_end_ns == read_at(e.end - 1)
        if e.complete:
            again = parse_sse(body[e.start : e.end])
            assert [(x.data, x.event, x.retry) for x in again] == [(e.data, e.event, e.retry)]
