"""Tiny, valid media files made by hand, so the image and audio endpoints need no library.

A PNG is a small gradient tinted by a seed; speech is a soft tone whose pitch depends
on the voice, as 16-bit mono PCM at 24 kHz (the API's rate), optionally wrapped in a
WAV header; `wav_duration` reads an uploaded file's length back for transcriptions.
"""

from __future__ import annotations

import math
import struct
import zlib

SAMPLE_RATE = 24_000
"""Samples per second of the speech the simulator makes."""


def png(seed: int, size: int = 16) -> bytes:
    """A small valid RGB PNG (a gradient tinted by `seed`), built by hand: no imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    r0, g0, b0 = seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(size)
            for v in ((r0 + 8 * x) & 0xFF, (g0 + 8 * y) & 0xFF, (b0 + 4 * (x + y)) & 0xFF)
        )
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def tone(seed: int, duration: float) -> bytes:
    """16-bit mono little-endian PCM: a soft tone whose pitch depends on the voice."""
    freq = 180.0 + seed % 240
    count = int(SAMPLE_RATE * duration)
    fade = max(1, count // 10)
    samples = (
        int(
            9000
            * min(1.0, i / fade, (count - i) / fade)
            * math.sin(2 * math.pi * freq * i / SAMPLE_RATE)
        )
        for i in range(count)
    )
    return struct.pack(f"<{count}h", *samples)


def wav(pcm: bytes) -> bytes:
    """`pcm` (as `tone` makes it) in a WAV container."""
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a PCM WAV, or an estimate from the size for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos = 12
        byte_rate = 0
        while pos + 8 <= len(data):
            tag = data[pos : pos + 4]
            size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if tag == b"fmt " and size >= 16:
                byte_rate = int.from_bytes(data[pos + 16 : pos + 20], "little")
            elif tag == b"data" and byte_rate:
                return round(min(size, len(data) - pos - 8) / byte_rate, 3)
            pos += 8 + size + (size & 1)
    return round(len(data) / 16_000, 3)
