"""Cassettes the analysis tests record through real sockets, and known edits of them.

The simulated upstream is deterministic, so two recordings of the same requests hold
the same answers; the edits below change exactly one thing each (a word, a tool
argument, a stop reason, the volatile ids), so a diff must find that and nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import openai

from streamtape import Cassette, Exchange, RecordingTransport, write_cassette
from streamtape.core.splice import splice_reads
from streamtape.simulator.app import FAULT_HEADER
from streamtape.transport.httpcompat import HTTP_LIBS

KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
LIB = HTTP_LIBS[-1]
PROMPT = [{"role": "user", "content": "Tell me about streams."}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def client(tape: Path, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url,
        api_key=KEY,
        max_retries=0,
        http_client=LIB.Client(transport=RecordingTransport(tape)),
    )


def record_workload(
    tape: Path, base_url: str, *, model: str = "gpt-4o-mini", prompt: Any = PROMPT
) -> Path:
    """Chat text (with usage), a chat tool call, a text completion and an embeddings call."""
    with client(tape, base_url) as c:
        for _ in c.chat.completions.create(
            model=model,
            messages=prompt,
            max_tokens=30,
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass
        for _ in c.chat.completions.create(
            model=model, messages=PROMPT, tools=TOOLS, tool_choice="required", stream=True
        ):
            pass
        for _ in c.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Once upon a time", max_tokens=20, stream=True
        ):
            pass
        c.embeddings.create(model="text-embedding-3-small", input=["streams"])
    return tape


def record_faults(tape: Path, base_url: str) -> Path:
    """One chat stream with a mid-stream error event, one that never sends [DONE]."""
    transport = RecordingTransport(tape)
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True, "max_tokens": 12}
    with LIB.Client(transport=transport, base_url=base_url) as http:
        for fault in ("mid-stream-error", "no-done"):
            headers = {"authorization": f"Bearer {KEY}", FAULT_HEADER: fault}
            with http.stream("POST", "/chat/completions", json=body, headers=headers) as r:
                for _ in r.iter_raw():
                    pass
    return tape


def replace_in(exchange: Exchange, old: bytes, new: bytes, count: int = 1) -> Exchange:
    """The exchange with ``old`` replaced in its body (``count`` times; 0: every time)."""
    body = exchange.body
    edits, pos = [], 0
    while count == 0 or len(edits) < count:
        at = body.find(old, pos)
        if at < 0:
            break
        edits.append((at, at + len(old), new))
        pos = at + len(old)
    assert edits, f"{old!r} is not in the body"
    return msgspec.structs.replace(exchange, reads=splice_reads(exchange.reads, edits))


def edited(src: Path, dst: Path, number: int, edits: Sequence[tuple[bytes, bytes, int]]) -> Path:
    """A copy of cassette ``src`` with exchange ``number`` (from 1) edited."""
    exchanges = Cassette.open(src).exchanges()
    for old, new, count in edits:
        exchanges[number - 1] = replace_in(exchanges[number - 1], old, new, count)
    write_cassette(dst, exchanges)
    return dst


def run(*args: str | Path, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    """``streamtape ARGS`` as a user runs it; asserts the exit status unless ``code`` is None."""
    proc = subprocess.run(
        [sys.executable, "-m", "streamtape", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    return proc
