"""Everything the simulator makes up, derived from a seed so it is the same on every run.

Seeds and ids are hashes of the request, never of the clock, so the same request gets
the same reply byte for byte; text comes from canned sentences, tokens from a regex
split, logprobs and pacing from a `random.Random` seeded the same way. The OpenAI-style
event stream of chunk payloads (interleaved choices, usage chunk, ``[DONE]``, human
gaps) is built here once for chat and text completions.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streamtape.core.faults import Event

EPOCH = 1_730_000_000
"""Base of every ``created`` stamp; the offset comes from the request, so replays stay equal."""
DONE = b"data: [DONE]\n\n"
"""The OpenAI stream's final event."""

C = TypeVar("C")


@dataclass
class Reply(Generic[C]):
    """A planned completion: the fields every chunk repeats, the choices, usage, and the
    seed its timing and faults derive from."""

    base: dict[str, Any]
    choices: list[C]
    usage: dict[str, Any]
    seed: int


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SENTENCES = (
    "Streaming responses arrive one small piece at a time, so the first words show up fast.",
    "A good test replays the exact bytes a server sent, including the pauses between them.",
    "Edinburgh is a hilly city, and its castle sits on an old volcanic rock.",
    "The quickest way to debug a flaky stream is to record it once and replay it many times.",
    "Tokens are not words: a long word is often split into two or three pieces.",
    "When a request fails halfway, the partial answer is still worth keeping.",
    "Rivers carry sediment downstream and drop it where the water slows.",
    "Most chat models reply with a role first, then the content, then a finish reason.",
    "Caching a response saves money, but only if the cache key captures the whole request.",
    "The lighthouse keeper wound the clockwork every four hours through the night.",
    "Latency matters more than throughput when a person is watching the text appear.",
    "A tool call is just structured text that the client agrees to execute.",
    "Bread rises because yeast turns sugar into carbon dioxide and a little alcohol.",
    "Retry with backoff, and respect the retry-after header when the server sends one.",
    "Good logs say what happened, where it happened, and what to do next.",
    "The recipe calls for two eggs, a cup of flour, and a pinch of salt.",
    "Compression works well on streams because every chunk repeats the same keys.",
    "Octopuses have three hearts and can taste with the suckers on their arms.",
    "Small deterministic fixtures make failures easy to reproduce on any machine.",
    "The train left on time, which surprised everyone on the platform.",
    "Sure! Here is a short answer, followed by a longer explanation if you need it.",
    "Keep secrets out of fixtures: redact headers before anything is written to disk.",
)
"""The canned prose every reply is drawn from."""

_ALT_TOKENS = (" the", " a", " and", ",", ".", " it", " to", " of", " is", " in", " that", "!")
_TOKEN_RE = re.compile(r"\s*[A-Za-z]{1,7}|\s*[A-Za-z']+|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")


def dumps(obj: Any) -> bytes:
    """Compact JSON like the OpenAI API sends (no spaces, raw UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def digest(*parts: Any) -> bytes:
    """SHA-256 over `parts` (bytes as they are, anything else as compact JSON)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else dumps(part))
        h.update(b"\x00")
    return h.digest()


def seed(*parts: Any) -> int:
    """A 64-bit seed from `parts`."""
    return int.from_bytes(digest(*parts)[:8], "big")


def ident(prefix: str, length: int, *parts: Any) -> str:
    """An id like the API's (``prefix`` and `length` base-62 characters) derived from `parts`."""
    rng = random.Random(seed(prefix, *parts))
    return prefix + "".join(rng.choice(_B62) for _ in range(length))


def sig(x: float) -> float:
    """Round to 8 significant digits, as the real API prints logprobs."""
    return float(f"{x:.8g}")


def tokenize(text: str) -> list[str]:
    """Split text into token-like pieces (short words, punctuation, whitespace runs)."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens `tokenize` finds: the simulator's usage counts."""
    return len(tokenize(text))


def text_of(content: Any) -> str:
    """The text of a message `content`, which may be a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def canned_text(rng: random.Random, min_tokens: int = 0) -> str:
    """Two to four canned sentences, or as many as it takes to reach `min_tokens`."""
    picked = rng.sample(SENTENCES, rng.randint(2, 4))
    while count_tokens(" ".join(picked)) < min_tokens:
        picked += rng.sample(SENTENCES, len(SENTENCES))
    return " ".join(picked)


def logprob_entry(rng: random.Random, token: str, top: int) -> dict[str, Any]:
    """A chat-style logprob entry for `token`, with `top` alternatives in falling order."""
    lp = sig(-rng.expovariate(3.0))
    alternatives: list[dict[str, Any]] = []
    if top > 0:
        alternatives.append({"token": token, "logprob": lp, "bytes": list(token.encode())})
        floor = lp
        for alt in rng.sample([t for t in _ALT_TOKENS if t != token], min(top - 1, 11)):
            floor = sig(floor - rng.uniform(0.5, 3.0))
            alternatives.append({"token": alt, "logprob": floor, "bytes": list(alt.encode())})
    return {
        "token": token,
        "logprob": lp,
        "bytes": list(token.encode()),
        "top_logprobs": alternatives,
    }


def gaps(rng: random.Random, count: int) -> list[float]:
    """Human-like pacing: a time to first token, then jittered gaps of 5-40 ms."""
    if count <= 0:
        return []
    mean = rng.uniform(0.012, 0.025)
    out = [rng.uniform(0.15, 0.40)]
    for _ in range(count - 1):
        out.append(min(0.040, max(0.005, mean * rng.lognormvariate(0.0, 0.45))))
    return out


def reply_seed(kind: str, body: dict[str, Any]) -> int:
    """The seed of a reply: everything but the transport choice, so stream and whole agree."""
    return seed(kind, {k: v for k, v in body.items() if k not in ("stream", "stream_options")})


def include_usage(body: dict[str, Any]) -> bool:
    """Whether a streaming request asked for a final usage chunk."""
    return bool((body.get("stream_options") or {}).get("include_usage"))


def chunk_stream(
    base: dict[str, Any],
    per_choice: Sequence[Sequence[dict[str, Any]]],
    usage: dict[str, Any] | None,
    timing_seed: int,
) -> list[Event]:
    """The OpenAI-style stream: one chunk per step, choices interleaved step by step, then
    the usage chunk (if `usage`), then ``[DONE]``, each after a human-like gap."""
    payloads: list[dict[str, Any]] = []
    for step in range(max(len(s) for s in per_choice)):
        for steps_of_choice in per_choice:
            if step < len(steps_of_choice):
                payloads.append({**base, "choices": [steps_of_choice[step]]})
    if usage is not None:
        payloads.append({**base, "choices": [], "usage": usage})
    datas = [b"data: " + dumps(p) + b"\n\n" for p in payloads] + [DONE]
    delays = gaps(random.Random(seed(timing_seed, "timing")), len(datas))
    return list(zip(delays, datas, strict=True))
