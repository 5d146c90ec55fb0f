"""`streamtape demo`: the whole job on a built-in upstream, with no API key and no network.

It records a simulated API (``streamtape.simulator``: OpenAI chat, text completions,
the Responses API, embeddings, and Anthropic Messages) over loopback through the
recording transport, with the official openai and anthropic SDKs when they are
installed, replays the cassette at the original pacing, reassembles every stream
whatever its format, and reports what a user wants to know: what was recorded, how
small the cassette is, time to first token, tokens per second, and how closely replay
kept the recorded timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from streamtape.cli._common import friendly
from streamtape.core.cassette import Cassette
from streamtape.core.exchange import Exchange
from streamtape.core.stats import percentiles
from streamtape.formats import assemble, summarize
from streamtape.simulator.app import UpstreamServer
from streamtape.transport import RecordingTransport, ReplayTransport

DEMO_KEY = "sk-demo-0000000000000000000000000000"
"""A fake key: the demo shows that even this never reaches the cassette."""

_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "chat, streamed",
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Why record LLM streams for tests?"}],
            "stream": True,
            "max_tokens": 120,
            "stream_options": {"include_usage": True},
        },
    ),
    (
        "chat + tool call, streamed",
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "What's the weather in Edinburgh?"}],
            "stream": True,
            "tools": _TOOLS,
            "tool_choice": "required",
        },
    ),
    (
        "text completion, streamed",
        "/completions",
        {
            "model": "gpt-3.5-turbo-instruct",
            "prompt": "Once upon a time",
            "stream": True,
            "max_tokens": 60,
        },
    ),
    (
        "embeddings (JSON)",
        "/embeddings",
        {"model": "text-embedding-3-small", "input": ["streams", "cassettes"]},
    ),
    (
        "responses API, streamed",
        "/responses",
        {
            "model": "gpt-4.1-mini",
            "input": "What's the weather in Lisbon?",
            "stream": True,
            "tools": [{"type": "function", **_TOOLS[0]["function"]}],
        },
    ),
    (
        "anthropic messages, streamed",
        "/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 120,
            "messages": [{"role": "user", "content": "Why replay streams with their timing?"}],
            "stream": True,
        },
    ),
]


@dataclass
class ReplayTiming:
    """Client-side lateness of replayed reads against the recorded schedule, in ms."""

    median_ms: float
    p99_ms: float
    max_ms: float
    reads: int


def _send_with_sdk(client: Any, path: str, body: dict[str, Any]) -> None:
    if path == "/chat/completions":
        result = client.chat.completions.create(**body)
    elif path == "/completions":
        result = client.completions.create(**body)
    elif path == "/responses":
        result = client.responses.create(**body)
    elif path == "/messages":
        result = client.messages.create(**body)
    else:
        client.embeddings.create(**body)
        return
    for _ in result:  # a stream: read it to the end as an application would
        pass


def _sdk(name: str) -> Any:
    """The official SDK module ``name``, or None when it is not installed."""
    try:
        return __import__(name)
    except ImportError:
        return None


def _sdk_client(factory: Any, transport: RecordingTransport, **options: Any) -> Any:
    """An SDK client on our transport, in whichever HTTP library the SDK builds on.

    The SDKs moved from httpx to httpx2 (and refuse the other's client); one transport
    object serves both, so try httpx2 first.
    """
    for lib in (_sdk("httpx2"), httpx):
        if lib is None:
            continue
        try:
            return factory(http_client=lib.Client(transport=transport), **options)
        except TypeError:
            continue
    return None


def _record(cassette: Cassette, root_url: str) -> str:
    """Send every scenario through the recording transport; say which clients were used."""
    transport = RecordingTransport(cassette)
    openai, anthropic = _sdk("openai"), _sdk("anthropic")
    clients: dict[str, Any] = {}
    if openai is not None:
        clients["openai"] = _sdk_client(
            openai.OpenAI, transport, base_url=root_url + "/v1", api_key=DEMO_KEY
        )
    if anthropic is not None:
        clients["anthropic"] = _sdk_client(
            anthropic.Anthropic, transport, base_url=root_url, api_key=DEMO_KEY
        )
    headers = {"authorization": f"Bearer {DEMO_KEY}", "x-api-key": DEMO_KEY}
    with httpx.Client(transport=transport, base_url=root_url + "/v1", headers=headers) as plain:
        for _, path, body in SCENARIOS:
            client = clients.get("anthropic" if path == "/messages" else "openai")
            if client is not None:
                _send_with_sdk(client, path, body)
            else:
                with plain.stream("POST", path.lstrip("/"), json=body) as response:
                    response.read()
    for client in clients.values():
        if client is not None:
            client.close()
    used = [
        f"{m.__name__} {m.__version__}"
        for m, key in ((openai, "openai"), (anthropic, "anthropic"))
        if m is not None and clients.get(key) is not None
    ]
    if not used:
        return f"plain httpx {httpx.__version__} (no official SDK is installed)"
    return "the official " + " and ".join(used) + " SDK" + ("s" if len(used) > 1 else "")


def _replay(cassette: Cassette) -> list[ReplayTiming]:
    """Replay each exchange at the original pacing and measure each read's lateness."""
    timings = []
    transport = ReplayTransport(cassette, "original")
    with httpx.Client(transport=transport) as client:
        for exchange in cassette:
            errors = []
            request = exchange.request
            start = time.perf_counter_ns()
            with client.stream(
                request.method, request.url, content=request.body, headers=request.headers
            ) as response:
                for read, _ in zip(exchange.reads, response.iter_raw(), strict=False):
                    errors.append((time.perf_counter_ns() - start - read.t_ns) / 1e6)
            late = [abs(e) for e in errors] or [0.0]
            p50, p99, worst = percentiles(late, (50, 99, 100), method="nearest")
            timings.append(ReplayTiming(p50, p99, worst, len(errors)))
    return timings


def _describe(exchange: Exchange) -> tuple[str, str, str]:
    """Time to first token, tokens/s and a snippet of the answer, whatever the format."""
    if not exchange.is_event_stream:
        return "-", "-", f"{len(exchange.body):,} bytes of JSON"
    summary = summarize(assemble(exchange))
    first, last = summary.t_first_ns, summary.t_last_ns
    tokens = summary.usage.output_tokens or summary.events
    ttft = f"{first / 1e6:.0f} ms" if first is not None else "-"
    rate = "-"
    if first is not None and last is not None and last > first:
        rate = f"{tokens / ((last - first) / 1e9):.0f}"
    text = summary.text
    calls = summary.tool_calls
    if calls:
        text = f"tool call {calls[0].name}({calls[0].arguments_text})"
    snippet = " ".join(text.split())
    label = summary.format.replace("_", " ")
    return ttft, rate, f"[{label}] " + snippet[:60] + ("…" if len(snippet) > 60 else "")


def run_demo(out: Path, *, speed: float = 1.0, echo: Callable[[str], Any] = print) -> None:
    """Record the built-in upstream into ``out``, replay it, and print a summary.

    An existing cassette at ``out`` is replaced; any other existing file is left alone
    and the demo stops with an error.
    """
    if out.exists():
        Cassette.open(out)  # refuses (NotACassetteError) to overwrite a file that is not a cassette
        out.unlink()
    echo(f"streamtape demo: simulated OpenAI and Anthropic APIs on loopback (speed {speed:g}x)")
    with UpstreamServer(speed=speed) as upstream:
        began = time.perf_counter()
        client_name = _record(Cassette.open(out), upstream.url)
        recorded_s = time.perf_counter() - began
    cassette = Cassette.open(out)
    exchanges = cassette.exchanges()
    echo(f"recorded {len(exchanges)} exchanges with {client_name} in {recorded_s:.1f} s\n")

    began = time.perf_counter()
    timings = _replay(cassette)
    replayed_s = time.perf_counter() - began

    echo(
        f"{'exchange':<28} {'reads':>5} {'raw':>9} {'on disk':>8} {'TTFT':>7} {'tok/s':>6} "
        f"{'replay err p50/p99':>19}  reassembled"
    )
    rows = zip(SCENARIOS, exchanges, cassette.entries(), timings, strict=True)
    for (name, _, _), exchange, entry, timing in rows:
        ttft, rate, snippet = _describe(exchange)
        err = f"{timing.median_ms:.3f}/{timing.p99_ms:.3f} ms"
        echo(
            f"{name:<28} {len(exchange.reads):>5} {len(exchange.body):>8,}B "
            f"{entry.record_bytes:>7,}B {ttft:>7} {rate:>6} {err:>19}  {snippet}"
        )

    raw = sum(len(e.body) for e in exchanges)
    size = out.stat().st_size
    worst = max(t.p99_ms for t in timings)
    redacted = sorted({name for e in exchanges for name in e.redacted})
    echo("")
    echo(
        f"cassette: {size:,} bytes for {raw:,} raw body bytes ({raw / size:.1f}x smaller), "
        "timing of every read included"
    )
    echo(
        f"replay:   {replayed_s:.1f} s at the original pacing (recording took {recorded_s:.1f} s); "
        f"worst p99 lateness {worst:.3f} ms"
    )
    echo(f"secrets:  redacted before writing: {', '.join(redacted) or 'none found'}")
    echo(f"\ncassette left at {out.resolve()}")
    echo(
        f"next:     streamtape ls {out}   |   streamtape decode {out} 1   |   "
        f"streamtape show {out} 2"
    )


@click.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default="streamtape-demo.tape",
    show_default=True,
    help="Where to write the cassette (overwritten).",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Speed of the simulated upstream (2 = twice as fast).",
)
@friendly
def demo(out: str, speed: float) -> None:
    """Record a simulated OpenAI and Anthropic upstream, replay it, and summarise both."""
    run_demo(Path(out), speed=speed, echo=click.echo)
